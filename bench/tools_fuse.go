package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// mountTimeout bounds how long a peer's mount may take to appear.
const mountTimeout = 60 * time.Second

// childMount is a FUSE daemon run in the foreground as our child process,
// which is how rclone and s3fs are measured: we know its PID without
// parsing logs and can wait for it.
type childMount struct {
	name    string
	logDir  string
	runs    int
	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error
	peak    int64 // the last daemon's peak memory, once it has exited
	sample  func() int64
	mountFS
}

// start runs the daemon and waits for the mount to appear.
func (c *childMount) start(ctx context.Context, env []string, bin string, args ...string) error {
	c.runs++
	c.peak = 0
	logPath := filepath.Join(c.logDir, fmt.Sprintf("%s-%d.log", c.name, c.runs))
	logf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logf.Close()
	// Not CommandContext: the daemon must outlive the Mount call; Unmount
	// ends it.
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = "/"
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: %w", c.name, err)
	}
	c.cmd, c.exited, c.sample = cmd, make(chan struct{}), sampleRSS(cmd.Process.Pid)
	go func() {
		c.waitErr = cmd.Wait()
		close(c.exited)
	}()
	if err := waitMounted(c.mp, c.exited, mountTimeout); err != nil {
		c.stop()
		return fmt.Errorf("%s: %v; log: %s", c.name, err, tail(logPath))
	}
	return nil
}

// PeakRSS is the daemon's VmHWM, last read before it exited (see
// outputPeak for why not the kernel's rusage figure).
func (c *childMount) PeakRSS() int64 {
	if c.cmd != nil {
		return peakRSS(c.cmd.Process.Pid)
	}
	return c.peak
}

func (c *childMount) Unmount(ctx context.Context) error { return c.stop() }

// stop unmounts and waits for the daemon to exit. A daemon that does not
// exit within 30 s of its unmount, or a mount that stays busy, is killed.
func (c *childMount) stop() error {
	if c.cmd == nil {
		return nil
	}
	var errs []error
	if err := unmount(c.mp); err != nil {
		errs = append(errs, fmt.Errorf("%s: unmount: %w", c.name, err))
	}
	select {
	case <-c.exited:
	case <-time.After(30 * time.Second):
		errs = append(errs, fmt.Errorf("%s: daemon still running 30 s after unmount", c.name))
		_ = c.cmd.Process.Kill()
		<-c.exited
	}
	forceUnmount(c.mp) // a killed daemon leaves its mount behind
	c.peak = c.sample()
	c.cmd = nil
	return errors.Join(errs...)
}

// tail is the end of a log file, for error messages.
func tail(path string) string {
	b, _ := os.ReadFile(path)
	s := strings.TrimSpace(string(b))
	if len(s) > 600 {
		s = "..." + s[len(s)-600:]
	}
	return s
}

// ---------------------------------------------------------------------------
// rclone mount, in two modes. "off": reads go to the server as the
// application asks for them (with rclone's own read-ahead buffer), and a
// file is uploaded while it is written, sequentially, the upload ending at
// close. "writes": a written file is kept in the VFS cache on disk and
// uploaded --vfs-write-back (5 s) after close; at unmount rclone 1.60
// exits without uploading what waits (the next mount with the same cache
// would), so Durable polls the bucket before unmounting.

type rcloneTool struct {
	t     *Target
	cache string // "off" or "writes"
	childMount
}

func newRclone() Tool       { return &rcloneTool{cache: "off"} }
func newRcloneWrites() Tool { return &rcloneTool{cache: "writes"} }

func (r *rcloneTool) Name() string { return "rclone " + r.cache }

func (r *rcloneTool) Version(ctx context.Context) string {
	return strings.TrimPrefix(firstLine(ctx, "rclone", "version"), "rclone ")
}

func (r *rcloneTool) Setup(ctx context.Context, t *Target) error {
	r.t = t
	r.childMount = childMount{name: "rclone", mountFS: mountFS{filepath.Join(t.Dir, "mnt")}, logDir: t.Dir}
	return os.MkdirAll(r.mp, 0o755)
}

// env defines the remote "R:" in the environment, so no config file is
// read or written. rclone 1.60's S3 backend fails to use the CA when
// AWS_CA_BUNDLE is set; it takes it from SSL_CERT_FILE instead.
func (r *rcloneTool) env() []string {
	s := r.t.Server
	return append(baseEnv(), "SSL_CERT_FILE="+s.CA, "RCLONE_CONFIG=/dev/null",
		"RCLONE_CONFIG_R_TYPE=s3", "RCLONE_CONFIG_R_PROVIDER=Other",
		"RCLONE_CONFIG_R_ENDPOINT="+s.Endpoint, "RCLONE_CONFIG_R_REGION=us-east-1",
		"RCLONE_CONFIG_R_ACCESS_KEY_ID="+s.Access, "RCLONE_CONFIG_R_SECRET_ACCESS_KEY="+s.Secret,
		"RCLONE_CONFIG_R_SSE_CUSTOMER_ALGORITHM=AES256", "RCLONE_CONFIG_R_SSE_CUSTOMER_KEY="+r.t.Secret)
}

func (r *rcloneTool) Mount(ctx context.Context) error {
	// A cache of its own, emptied: a fresh mount has nothing cached and
	// nothing left to upload from an earlier run.
	cache := filepath.Join(r.t.Dir, "cache")
	if err := os.RemoveAll(cache); err != nil {
		return err
	}
	return r.start(ctx, r.env(), "rclone", "mount", "R:"+r.t.Bucket, r.mp,
		"--vfs-cache-mode", r.cache, "--cache-dir", cache)
}

func (r *rcloneTool) Durable(ctx context.Context, want map[string]int64) error {
	var settle func(context.Context, map[string]int64) error
	if r.cache != "off" {
		settle = r.t.S3.waitListed
	}
	return durable(ctx, want, settle, r.Unmount)
}

// ---------------------------------------------------------------------------
// s3fs-fuse, with its defaults (no disk cache: it stages data in temporary
// files while a file is open).

type s3fsTool struct {
	t              *Target
	keyFile, creds string
	childMount
}

func newS3fs() Tool { return &s3fsTool{} }

func (s *s3fsTool) Name() string { return "s3fs" }

func (s *s3fsTool) Version(ctx context.Context) string {
	// "Amazon Simple Storage Service File System V1.90 (commit:unknown) with GnuTLS(gcrypt)"
	for _, f := range strings.Fields(firstLine(ctx, "s3fs", "--version")) {
		if strings.HasPrefix(f, "V") {
			return f
		}
	}
	return "unknown"
}

func (s *s3fsTool) Setup(ctx context.Context, t *Target) error {
	s.t = t
	s.childMount = childMount{name: "s3fs", mountFS: mountFS{filepath.Join(t.Dir, "mnt")}, logDir: t.Dir}
	s.keyFile, s.creds = filepath.Join(t.Dir, "sse-c.key"), filepath.Join(t.Dir, "passwd")
	if err := os.MkdirAll(s.mp, 0o755); err != nil {
		return err
	}
	// s3fs takes a line of exactly 32 characters as the raw key (longer
	// lines as base64 of it), the same convention as aws --sse-c-key.
	if err := writePrivate(s.keyFile, t.Secret+"\n"); err != nil {
		return err
	}
	return writePrivate(s.creds, t.Server.Access+":"+t.Server.Secret+"\n")
}

func (s *s3fsTool) Mount(ctx context.Context) error {
	// libcurl verifies the server against CURL_CA_BUNDLE; without it s3fs
	// refuses our private CA at start ("unable to connect").
	env := append(baseEnv(), "CURL_CA_BUNDLE="+s.t.Server.CA)
	opts := strings.Join([]string{"url=" + s.t.Server.Endpoint, "use_path_request_style", "endpoint=us-east-1",
		"passwd_file=" + s.creds, "use_sse=custom:" + s.keyFile}, ",")
	return s.start(ctx, env, "s3fs", s.t.Bucket, s.mp, "-f", "-o", opts)
}

// Durable: s3fs uploads a file when it is closed (flushed), before close
// returns; unmounting is all that is left.
func (s *s3fsTool) Durable(ctx context.Context, want map[string]int64) error {
	return durable(ctx, want, nil, s.Unmount)
}
