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
	mp      string
	logDir  string
	runs    int
	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error
}

// start runs the daemon and waits for the mount to appear.
func (c *childMount) start(ctx context.Context, env []string, bin string, args ...string) error {
	c.runs++
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
	c.cmd, c.exited = cmd, make(chan struct{})
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

func (c *childMount) pid() int {
	if c.cmd == nil {
		return 0
	}
	return c.cmd.Process.Pid
}

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
// rclone mount, without its VFS cache: reads go to the server as the
// application asks for them (with rclone's own read-ahead buffer).

type rcloneTool struct {
	t *Target
	childMount
}

func newRclone() Tool { return &rcloneTool{} }

func (r *rcloneTool) Name() string { return "rclone mount" }

func (r *rcloneTool) Version(ctx context.Context) string {
	return strings.TrimPrefix(firstLine(ctx, "rclone", "version"), "rclone ")
}

func (r *rcloneTool) Setup(ctx context.Context, t *Target) error {
	r.t = t
	r.childMount = childMount{name: "rclone", mp: filepath.Join(t.Dir, "mnt"), logDir: t.Dir}
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
	return r.start(ctx, r.env(), "rclone", "mount", "R:"+r.t.Bucket, r.mp, "--vfs-cache-mode", "off")
}

func (r *rcloneTool) ReadPath(ctx context.Context, key string) (string, error) {
	return filepath.Join(r.mp, key), nil
}

func (r *rcloneTool) PeakRSS() int64 { return peakRSS(r.pid()) }

func (r *rcloneTool) Unmount(ctx context.Context) error { return r.stop() }

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
	s.childMount = childMount{name: "s3fs", mp: filepath.Join(t.Dir, "mnt"), logDir: t.Dir}
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

func (s *s3fsTool) ReadPath(ctx context.Context, key string) (string, error) {
	return filepath.Join(s.mp, key), nil
}

func (s *s3fsTool) PeakRSS() int64 { return peakRSS(s.pid()) }

func (s *s3fsTool) Unmount(ctx context.Context) error { return s.stop() }
