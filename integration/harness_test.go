//go:build integration

// Package integration mounts the real ssecfs binary against real S3 servers
// (Ceph RGW and MinIO over TLS, started by servers/up.sh) and checks what a
// user would see, byte for byte.
package integration

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// secret is the SSE-C key as users keep it: 32 printable characters.
const secret = "Ahx4oofae6eiquohXoh4ohgh6ieSh8ph"

var (
	binary   string // the ssecfs binary under test
	stateDir = envOr("SSECFS_TEST_STATE", "/var/tmp/ssecfs-test")
)

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func TestMain(m *testing.M) {
	if os.Getenv("SSECFS_SOAK_WORKER") != "" {
		os.Exit(m.Run()) // a soak worker process: it needs no binary
	}
	dir, err := os.MkdirTemp("", "ssecfs-bin-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "ssecfs")
	// World-readable, so the non-root test user can run it.
	os.Chmod(dir, 0o755)
	args := []string{"build", "-o", binary}
	if os.Getenv("SSECFS_RACE") != "" {
		// The daemon under the race detector: its reports go to the
		// daemon log, which every mount's cleanup checks.
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, "../cmd/ssecfs")...)
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building ssecfs:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// server is one S3 server started by servers/up.sh.
type server struct {
	name                  string
	endpoint, access, sec string
	ca                    string
}

func loadServer(t *testing.T, name string) *server {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(stateDir, name, "env"))
	if err != nil {
		t.Fatalf("%s is not started (run integration/servers/up.sh): %v", name, err)
	}
	env := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimPrefix(strings.TrimSpace(line), "export ")
		if k, v, ok := strings.Cut(line, "="); ok {
			env[k] = strings.Trim(v, `"'`)
		}
	}
	return &server{
		name: name, endpoint: env["AWS_ENDPOINT_URL"], access: env["AWS_ACCESS_KEY_ID"],
		sec: env["AWS_SECRET_ACCESS_KEY"], ca: env["AWS_CA_BUNDLE"],
	}
}

// eachServer runs f as a subtest on every server.
func eachServer(t *testing.T, f func(t *testing.T, s *server)) {
	for _, name := range []string{"minio", "rgw"} {
		t.Run(name, func(t *testing.T) { f(t, loadServer(t, name)) })
	}
}

// env is the environment of a client of s: credentials, CA, no endpoint
// variable (Debian's aws 2.9 ignores it; ssecfs gets --endpoint).
func (s *server) env() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			out = append(out, kv)
		}
	}
	return append(out, "AWS_ACCESS_KEY_ID="+s.access, "AWS_SECRET_ACCESS_KEY="+s.sec,
		"AWS_DEFAULT_REGION=us-east-1", "AWS_CA_BUNDLE="+s.ca, "AWS_EC2_METADATA_DISABLED=true")
}

// aws runs Debian's awscli (another aws may come first on PATH). Its
// multipart uploads to MinIO now and then fail with "'ETag'" (awscli 2.9
// finds no ETag in an UploadPart answer); such a run is tried again, twice
// at most: the tests are about ssecfs, not about that pair.
func (s *server) aws(t *testing.T, args ...string) string {
	t.Helper()
	if len(args) > 1 && args[0] == "s3" && args[1] != "mb" {
		args = append(args, "--only-show-errors")
	}
	var out []byte
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		cmd := exec.Command("/usr/bin/aws", append([]string{"--endpoint-url", s.endpoint}, args...)...)
		cmd.Env = s.env()
		out, err = cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "'ETag'") {
			break
		}
		t.Logf("aws %s: %s; trying again", args[1], strings.TrimSpace(string(out)))
	}
	if err != nil {
		t.Fatalf("aws %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// sse is the aws arguments that encrypt with key.
func sse(key string) []string { return []string{"--sse-c", "AES256", "--sse-c-key", key} }

// bucket creates a fresh bucket, removed with everything in it after the test.
func (s *server) bucket(t *testing.T) string {
	t.Helper()
	b := make([]byte, 4)
	rand.Read(b)
	name := strings.ToLower(regexp.MustCompile(`[^a-zA-Z0-9]+`).ReplaceAllString(t.Name(), "-"))
	if len(name) > 40 {
		name = name[len(name)-40:]
	}
	name = strings.Trim("t-"+strings.Trim(name, "-")+"-"+hex.EncodeToString(b), "-")
	s.aws(t, "s3", "mb", "s3://"+name)
	t.Cleanup(func() {
		cmd := exec.Command("/usr/bin/aws", "--endpoint-url", s.endpoint, "s3", "rb", "--force", "s3://"+name)
		cmd.Env = s.env()
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Logf("removing bucket %s: %v\n%s", name, err, out)
		}
	})
	return name
}

// keyFile writes the key where only its owner can read it.
func keyFile(t *testing.T, key string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(p, []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// mount is a running ssecfs daemon.
type mount struct {
	dir, log string
	pid      int
}

// run runs the binary with s's credentials and returns its output and exit
// code. The deadline only catches hangs.
func (s *server) run(t *testing.T, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = s.env()
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("ssecfs %s hung", strings.Join(args, " "))
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), code
}

// mount mounts target (BUCKET[/PREFIX]) in the background, as users do,
// and unmounts it when the test ends.
func (s *server) mount(t *testing.T, target string, args ...string) *mount {
	t.Helper()
	m := &mount{dir: t.TempDir(), log: filepath.Join(t.TempDir(), "ssecfs.log")}
	full := append([]string{"mount", "--endpoint", s.endpoint, "--key-file", keyFile(t, secret),
		"--log-file", m.log, "--log-level", "debug"}, args...)
	full = append(full, target, m.dir)
	out, code := s.run(t, full...)
	if code != 0 {
		t.Fatalf("mount failed (%d): %s\nlog:\n%s", code, out, readLog(m.log))
	}
	m.pid = pidFromLog(t, m.log)
	t.Cleanup(func() {
		m.unmount(t)
		if log := readLog(m.log); strings.Contains(log, "WARNING: DATA RACE") {
			i := strings.Index(log, "WARNING: DATA RACE")
			t.Errorf("the race detector found a data race in the daemon:\n%s", log[i:min(len(log), i+6000)])
		}
		if t.Failed() {
			// SSECFS_KEEP_LOGS=DIR keeps the whole log (below, only its
			// end is shown): a soak's failure needs its history.
			log := readLog(m.log)
			if d := os.Getenv("SSECFS_KEEP_LOGS"); d != "" {
				_ = os.MkdirAll(d, 0o700)
				os.WriteFile(filepath.Join(d, strings.ReplaceAll(t.Name(), "/", "_")+fmt.Sprint(time.Now().UnixNano())+".log"), []byte(log), 0o600)
			}
			// The errors and warnings first, wherever they are: the end
			// of a busy log is mostly debug lines after the failure.
			if bad := problemLines(log); len(bad) > 0 {
				t.Logf("daemon log %s, errors and warnings:\n%s", m.log, strings.Join(bad[:min(len(bad), 60)], "\n"))
			}
			if len(log) > 8000 {
				log = "...\n" + log[len(log)-8000:]
			}
			t.Logf("daemon log %s:\n%s", m.log, log)
		}
	})
	return m
}

// problemLines is the log's error and warning lines.
func problemLines(log string) []string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "level=ERROR") || strings.Contains(l, "level=WARN") {
			out = append(out, l)
		}
	}
	return out
}

// readLog reads a daemon's log, its rotated files first (LOG.3 ... LOG).
func readLog(p string) string {
	var all []byte
	for i := 9; i >= 1; i-- {
		b, _ := os.ReadFile(fmt.Sprintf("%s.%d", p, i))
		all = append(all, b...)
	}
	b, _ := os.ReadFile(p)
	return string(append(all, b...))
}

// pidFromLog finds the daemon's PID in its "mounted" log line.
func pidFromLog(t *testing.T, logPath string) int {
	t.Helper()
	f, err := os.Open(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	re := regexp.MustCompile(`msg=mounted .*pid=(\d+)`)
	sc := bufio.NewScanner(f)
	pid := 0
	for sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			pid, _ = strconv.Atoi(m[1])
		}
	}
	if pid == 0 {
		t.Fatalf("no pid in the daemon log:\n%s", readLog(logPath))
	}
	return pid
}

// unmount unmounts and waits for the daemon to exit.
func (m *mount) unmount(t *testing.T) {
	t.Helper()
	if m.pid == 0 {
		return
	}
	out, err := exec.Command(binary, "umount", m.dir).CombinedOutput()
	if err != nil && !bytes.Contains(out, []byte("not mounted")) {
		t.Errorf("umount: %v: %s", err, out)
	}
	if !waitExit(t, m.pid) {
		// Left running, it would keep the mount and its retries going
		// after the tests: it is ours to end.
		_ = unix.Kill(m.pid, unix.SIGKILL)
		_ = unix.Unmount(m.dir, unix.MNT_DETACH)
	}
	m.pid = 0
}

// waitExit waits for a process that is not our child to end, by pidfd,
// and reports whether it did within a minute.
func waitExit(t *testing.T, pid int) bool {
	t.Helper()
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return true // already gone
	}
	defer unix.Close(fd)
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, 60_000)
		if err == unix.EINTR {
			continue
		}
		if err != nil || n == 0 {
			t.Errorf("daemon %d did not exit within a minute of unmount", pid)
			return false
		}
		return true
	}
}
