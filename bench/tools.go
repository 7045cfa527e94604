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

// Tool is one way of getting data between a program and a bucket: the raw
// S3 client or a FUSE filesystem. One value serves one server; the runner
// calls Setup once, then for every run Mount, the workload (which may call
// Durable), Unmount and PeakRSS. What a workload needs beyond that is a
// small interface of its own (pathReader, fileWriter, treeCopier,
// treeSyncer), which every tool here implements.
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
	// Durable returns once the objects just written through the tool
	// (key → size) are in the bucket: sync, then for a mount its unmount
	// (ssecfs uploads what waits before its umount returns), and for a
	// daemon that uploads after close and does not wait for that at exit
	// (rclone's VFS cache), polling the bucket before the unmount. It is
	// part of a write's measured time.
	Durable(ctx context.Context, want map[string]int64) error
	// Unmount ends the mount and returns once the daemon has exited,
	// forcing both if they do not go by themselves. A second call does
	// nothing.
	Unmount(ctx context.Context) error
	// PeakRSS is the peak resident memory in bytes of the process that did
	// the work during the last run (the FUSE daemon over its whole life,
	// or the aws process), 0 if unknown. Called after Unmount.
	PeakRSS() int64
}

// Target is one bucket on one server, as every tool sees it.
type Target struct {
	Server *Server
	Bucket string
	// Secret is the SSE-C key as users have it: 32 printable characters
	// used directly as the key bytes by aws, rclone, s3fs and ssecfs.
	Secret string
	// S3 is the bench's own client of the bucket, for checks.
	S3 *objStore
	// Dir is a private directory per tool and server for key files,
	// the mountpoint and logs.
	Dir string
}

// mountFS is what every FUSE tool does in the workloads: the programs
// users run (cp, rsync, ls, find) on paths inside the mountpoint.
type mountFS struct{ mp string }

// mounted is a tool that shows the bucket as files, for workloads that
// only a filesystem can do (random reads).
type mounted interface {
	// Path is where object key is in the mount.
	Path(key string) string
}

func (m mountFS) Path(key string) string { return filepath.Join(m.mp, key) }

func (m mountFS) ReadPath(ctx context.Context, key string) (string, error) {
	return filepath.Join(m.mp, key), nil
}

func (m mountFS) WriteFile(ctx context.Context, src, key string) error {
	_, err := m.run(ctx, "cp", src, filepath.Join(m.mp, key))
	return err
}

func (m mountFS) CopyIn(ctx context.Context, src, prefix string) error {
	_, err := m.run(ctx, "cp", "-r", src, filepath.Join(m.mp, prefix))
	return err
}

func (m mountFS) CopyOut(ctx context.Context, prefix, dst string) error {
	_, err := m.run(ctx, "cp", "-r", filepath.Join(m.mp, prefix), dst)
	return err
}

func (m mountFS) Sync(ctx context.Context, src, prefix string) ([]string, error) {
	out, err := m.run(ctx, "rsync", "-ai", src+"/", filepath.Join(m.mp, prefix)+"/")
	return lines(out), err
}

func (m mountFS) ListLong(ctx context.Context, prefix string) ([]string, error) {
	out, err := m.run(ctx, "ls", "-l", filepath.Join(m.mp, prefix))
	return lines(out), err
}

func (m mountFS) Find(ctx context.Context, prefix string) ([]string, error) {
	out, err := m.run(ctx, "find", filepath.Join(m.mp, prefix))
	return lines(out), err
}

// run is command with the mountpoint written as MOUNT in errors, which
// keeps them short enough for the report.
func (m mountFS) run(ctx context.Context, name string, args ...string) (string, error) {
	out, err := command(ctx, name, args...)
	if err != nil {
		err = errors.New(strings.ReplaceAll(err.Error(), m.mp, "MOUNT"))
	}
	return out, err
}

// durable is Durable for a mount: settle, if not nil, waits for uploads
// the daemon does in the background; unmount ends the mount.
func durable(ctx context.Context, want map[string]int64, settle func(context.Context, map[string]int64) error,
	unmount func(context.Context) error) error {
	if _, err := command(ctx, "sync"); err != nil {
		return err
	}
	if settle != nil {
		if err := settle(ctx, want); err != nil {
			return err
		}
	}
	return unmount(ctx)
}

// command runs a program and returns its standard output; the error
// carries the first lines of its standard error, where cp and rsync name
// the cause.
func command(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("%s: %v: %s", name, err, firstLines(stderr.String(), 2))
	}
	return string(out), nil
}

// lines splits output into its non-empty lines.
func lines(out string) []string {
	var l []string
	for _, s := range strings.Split(out, "\n") {
		if s = strings.TrimSpace(s); s != "" {
			l = append(l, s)
		}
	}
	return l
}

func firstLines(s string, n int) string {
	l := lines(s)
	return strings.Join(l[:min(n, len(l))], " / ")
}

func lastLines(s string, n int) string {
	l := lines(s)
	return strings.Join(l[max(0, len(l)-n):], " / ")
}

// writePrivate writes a file only its owner may read (key files; s3fs
// refuses key and password files readable by others).
func writePrivate(path, content string) error {
	return os.WriteFile(path, []byte(content), 0o600)
}

// ---------------------------------------------------------------------------
// ssecfs, mounted as users do: "ssecfs mount" returns once the background
// daemon serves the mount.

type ssecfsTool struct {
	name    string
	bin     string
	options []string // extra mount options (-ssecfs-options)
	// keepState keeps what a mount learnt of the objects' metadata for
	// the next mount (ssecfs's own default); without it every mount
	// starts as on a new machine.
	keepState bool
	t         *Target
	key       string
	journal   string
	runs      int
	pid       int   // the daemon, while mounted
	peak      int64 // its VmHWM, last seen
	mountFS
}

func newSSECFS(bin string, options []string) func() Tool {
	return func() Tool { return &ssecfsTool{name: "ssecfs", bin: bin, options: options} }
}

// newSSECFSKept is ssecfs keeping its metadata between mounts, as users
// run it; newSSECFSNew is ssecfs on a new machine, every mount.
func newSSECFSKept(bin string, options []string) func() Tool {
	return func() Tool { return &ssecfsTool{name: "ssecfs", bin: bin, options: options, keepState: true} }
}

func newSSECFSNew(bin string, options []string) func() Tool {
	return func() Tool { return &ssecfsTool{name: "ssecfs new machine", bin: bin, options: options} }
}

func (s *ssecfsTool) Name() string { return s.name }

func (s *ssecfsTool) Version(ctx context.Context) string {
	return strings.TrimPrefix(firstLine(ctx, s.bin, "version"), "ssecfs ")
}

func (s *ssecfsTool) Setup(ctx context.Context, t *Target) error {
	s.t, s.mp, s.key = t, filepath.Join(t.Dir, "mnt"), filepath.Join(t.Dir, "key")
	s.journal = filepath.Join(t.Dir, "journal")
	if err := os.MkdirAll(s.mp, 0o755); err != nil {
		return err
	}
	return writePrivate(s.key, t.Secret+"\n")
}

func (s *ssecfsTool) Mount(ctx context.Context) error {
	s.runs++
	s.peak = 0
	// A fresh mount starts without files left waiting by an earlier
	// failed run (the next mount would upload them).
	if err := os.RemoveAll(s.journal); err != nil {
		return err
	}
	state := filepath.Join(s.t.Dir, "state")
	if !s.keepState {
		if err := os.RemoveAll(state); err != nil {
			return err
		}
	}
	// A log per mount, so that the "mounted" line found is this daemon's.
	logPath := filepath.Join(s.t.Dir, fmt.Sprintf("ssecfs-%d.log", s.runs))
	args := append([]string{"mount", "--endpoint", s.t.Server.Endpoint,
		"--key-file", s.key, "--journal-dir", s.journal, "--log-file", logPath}, s.options...)
	cmd := exec.CommandContext(ctx, s.bin, append(args, s.t.Bucket, s.mp)...)
	cmd.Env = append(s.t.Server.awsEnv(), "XDG_STATE_HOME="+state)
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

// Durable: "ssecfs umount" returns only once every file waiting for
// upload is in the bucket, and fails if one could not be uploaded.
func (s *ssecfsTool) Durable(ctx context.Context, want map[string]int64) error {
	return durable(ctx, want, nil, s.Unmount)
}

func (s *ssecfsTool) PeakRSS() int64 { return s.peak }

func (s *ssecfsTool) Unmount(ctx context.Context) error {
	if s.pid == 0 {
		return nil
	}
	pid := s.pid
	s.pid = 0
	// The daemon is not our child: its peak memory is sampled while it
	// uploads what waits and exits.
	stop := sampleRSS(pid)
	defer func() { s.peak = max(s.peak, stop()) }()
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
