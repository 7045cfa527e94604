package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Tool is one way of getting an object's bytes to a program: the raw S3
// client or a FUSE filesystem. One value serves one server; the runner
// calls Setup once, then Mount, ReadPath (through a Workload), PeakRSS and
// Unmount for every run.
type Tool interface {
	// Name is the column heading in the report.
	Name() string
	// Version is the tool's version as shown in the report.
	Version(ctx context.Context) string
	// Setup prepares the tool for t: key and credential files, mountpoint.
	Setup(ctx context.Context, t *Target) error
	// Mount starts a fresh mount of the bucket and returns once it is
	// ready. The raw client has nothing to mount.
	Mount(ctx context.Context) error
	// ReadPath returns a local path that holds the bytes of object key:
	// for a mount the path inside it; the raw client downloads the object
	// first, and that download is part of the measured time.
	ReadPath(ctx context.Context, key string) (string, error)
	// PeakRSS is the peak resident memory in bytes of the process that did
	// the work (the FUSE daemon, or the last download), 0 if unknown.
	PeakRSS() int64
	// Unmount ends the mount and returns once the daemon has exited,
	// forcing both if they do not go by themselves.
	Unmount(ctx context.Context) error
}

// Target is one bucket on one server, as every tool sees it.
type Target struct {
	Server *Server
	Bucket string
	// Secret is the SSE-C key as users have it: 32 printable characters
	// used directly as the key bytes by aws, rclone, s3fs and ssecfs.
	Secret string
	// Dir is a private directory per tool and server for key files,
	// the mountpoint and logs.
	Dir string
}

// writePrivate writes a file only its owner may read (key files; s3fs
// refuses key and password files readable by others).
func writePrivate(path, content string) error {
	return os.WriteFile(path, []byte(content), 0o600)
}

// ---------------------------------------------------------------------------
// aws s3 cp: the raw-client reference

type awsTool struct {
	t   *Target
	rss int64
	n   int // downloads so far, for distinct file names
}

func newAWS() Tool { return &awsTool{} }

func (a *awsTool) Name() string { return "aws s3 cp" }

func (a *awsTool) Version(ctx context.Context) string {
	v, _, _ := strings.Cut(firstLine(ctx, awsCLI, "--version"), " ")
	return v
}

func (a *awsTool) Setup(ctx context.Context, t *Target) error { a.t = t; return nil }

func (a *awsTool) Mount(ctx context.Context) error {
	// The previous download would otherwise sit in the page cache and on
	// disk; a cold run starts without it.
	return removeDownloads(a.t.Dir)
}

// ReadPath downloads the object with aws's own defaults (parallel ranged
// GETs of 8 MiB parts, 10 at a time) to a local file.
func (a *awsTool) ReadPath(ctx context.Context, key string) (string, error) {
	a.n++
	dst := filepath.Join(a.t.Dir, fmt.Sprintf("download-%d", a.n))
	args := append([]string{"--endpoint-url", a.t.Server.Endpoint, "s3", "cp", "--only-show-errors"},
		sseArgs(a.t.Secret)...)
	cmd := exec.CommandContext(ctx, awsCLI, append(args, "s3://"+a.t.Bucket+"/"+key, dst)...)
	cmd.Env = a.t.Server.awsEnv()
	out, err := cmd.CombinedOutput()
	a.rss = childPeakRSS(cmd.ProcessState)
	if err != nil {
		return "", fmt.Errorf("aws s3 cp: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return dst, nil
}

func (a *awsTool) PeakRSS() int64 { return a.rss }

func (a *awsTool) Unmount(ctx context.Context) error { return removeDownloads(a.t.Dir) }

func removeDownloads(dir string) error {
	files, _ := filepath.Glob(filepath.Join(dir, "download-*"))
	for _, f := range files {
		if err := os.Remove(f); err != nil {
			return err
		}
	}
	return nil
}

// ---------------------------------------------------------------------------
// ssecfs, mounted as users do: "ssecfs mount" returns once the background
// daemon serves the mount.

type ssecfsTool struct {
	bin  string
	t    *Target
	mp   string
	key  string
	runs int
	pid  int // the daemon, while mounted
}

func newSSECFS(bin string) func() Tool {
	return func() Tool { return &ssecfsTool{bin: bin} }
}

func (s *ssecfsTool) Name() string { return "ssecfs" }

func (s *ssecfsTool) Version(ctx context.Context) string {
	return strings.TrimPrefix(firstLine(ctx, s.bin, "version"), "ssecfs ")
}

func (s *ssecfsTool) Setup(ctx context.Context, t *Target) error {
	s.t, s.mp, s.key = t, filepath.Join(t.Dir, "mnt"), filepath.Join(t.Dir, "key")
	if err := os.MkdirAll(s.mp, 0o755); err != nil {
		return err
	}
	return writePrivate(s.key, t.Secret+"\n")
}

func (s *ssecfsTool) Mount(ctx context.Context) error {
	s.runs++
	// A log per mount, so that the "mounted" line found is this daemon's.
	logPath := filepath.Join(s.t.Dir, fmt.Sprintf("ssecfs-%d.log", s.runs))
	cmd := exec.CommandContext(ctx, s.bin, "mount", "--endpoint", s.t.Server.Endpoint,
		"--key-file", s.key, "--log-file", logPath, s.t.Bucket, s.mp)
	cmd.Env = s.t.Server.awsEnv()
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("ssecfs mount: %v: %s", err, strings.TrimSpace(string(out)))
	}
	pid, err := pidFromLog(logPath)
	if err != nil {
		forceUnmount(s.mp)
		return err
	}
	s.pid = pid
	return nil
}

var mountedRe = regexp.MustCompile(`msg=mounted .*pid=(\d+)`)

// pidFromLog finds the daemon's PID in its "mounted" log line.
func pidFromLog(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if m := mountedRe.FindStringSubmatch(sc.Text()); m != nil {
			return strconv.Atoi(m[1])
		}
	}
	return 0, fmt.Errorf("no msg=mounted line with the daemon's pid in %s", path)
}

func (s *ssecfsTool) ReadPath(ctx context.Context, key string) (string, error) {
	return filepath.Join(s.mp, key), nil
}

func (s *ssecfsTool) PeakRSS() int64 { return peakRSS(s.pid) }

func (s *ssecfsTool) Unmount(ctx context.Context) error {
	if s.pid == 0 {
		return nil
	}
	pid := s.pid
	s.pid = 0
	var errs []error
	if isMounted(s.mp) {
		out, err := exec.CommandContext(ctx, s.bin, "umount", s.mp).CombinedOutput()
		if err != nil {
			errs = append(errs, fmt.Errorf("ssecfs umount: %v: %s", err, strings.TrimSpace(string(out))))
			forceUnmount(s.mp)
		}
	}
	if err := waitExit(pid, 30*time.Second); err != nil {
		errs = append(errs, err)
		killAndWait(pid)
	}
	return errors.Join(errs...)
}
