package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Server is one S3 server started by integration/servers/up.sh.
type Server struct {
	Name, Endpoint, Access, Secret, CA string
}

// stateDir is where up.sh keeps the servers' data, certificates and
// client environments.
func stateDir() string {
	if v := os.Getenv("SSECFS_TEST_STATE"); v != "" {
		return v
	}
	return "/var/tmp/ssecfs-test"
}

// loadServer reads the client environment that up.sh wrote for name
// ("minio" or "rgw"): shell lines "export K=V".
func loadServer(name string) (*Server, error) {
	p := filepath.Join(stateDir(), name, "env")
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("server %s: %w (is it started? integration/servers/up.sh)", name, err)
	}
	env := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimPrefix(strings.TrimSpace(line), "export ")
		if k, v, ok := strings.Cut(line, "="); ok {
			env[k] = strings.Trim(v, `"'`)
		}
	}
	s := &Server{Name: name, Endpoint: env["AWS_ENDPOINT_URL"], Access: env["AWS_ACCESS_KEY_ID"],
		Secret: env["AWS_SECRET_ACCESS_KEY"], CA: env["AWS_CA_BUNDLE"]}
	if s.Endpoint == "" || s.Access == "" || s.Secret == "" || s.CA == "" {
		return nil, fmt.Errorf("server %s: %s lacks the endpoint, credentials or CA", name, p)
	}
	return s, nil
}

// baseEnv is our environment without any AWS_ or RCLONE_ variable, so that
// the caller's own configuration does not leak into a measured tool.
func baseEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") && !strings.HasPrefix(kv, "RCLONE_") {
			out = append(out, kv)
		}
	}
	return out
}

// awsEnv is the environment of an AWS-style client of s (aws, ssecfs):
// credentials and CA only. Config files are disabled so that a profile
// on this machine cannot change endpoints or transfer settings.
func (s *Server) awsEnv() []string {
	return append(baseEnv(), "AWS_ACCESS_KEY_ID="+s.Access, "AWS_SECRET_ACCESS_KEY="+s.Secret,
		"AWS_DEFAULT_REGION=us-east-1", "AWS_REGION=us-east-1", "AWS_CA_BUNDLE="+s.CA,
		"AWS_EC2_METADATA_DISABLED=true", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
}

// awsCLI is Debian's awscli 2.9: another aws earlier on PATH (1.x) gets
// HTTP 411 from RGW. 2.9 ignores AWS_ENDPOINT_URL, hence --endpoint-url.
const awsCLI = "/usr/bin/aws"

// runAWS runs awscli against s and returns its combined output.
func runAWS(ctx context.Context, s *Server, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, awsCLI, append([]string{"--endpoint-url", s.Endpoint}, args...)...)
	cmd.Env = s.awsEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("aws %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// sseArgs are the aws arguments that encrypt or decrypt with secret.
func sseArgs(secret string) []string { return []string{"--sse-c", "AES256", "--sse-c-key", secret} }

// dropCaches makes the next read cold: dirty pages are written, then the
// page cache, dentries and inodes are dropped. The servers run on this
// machine, so this also empties their cache of the object's data.
func dropCaches() error {
	unix.Sync()
	return os.WriteFile("/proc/sys/vm/drop_caches", []byte("3\n"), 0)
}

// settle waits until the machine is quiet: at least 90% of its CPU time
// idle over a quarter of a second, for at most 20 s. The servers run on
// this machine and go on working after a workload's preparation (MinIO and
// Ceph flush and compact what was just uploaded); without the wait, the
// first run after it ran against that work, and in a quick run (one run
// per tool, in the same order) that was always the same tool. It reports
// whether the machine became quiet.
func settle(ctx context.Context) bool {
	deadline := time.Now().Add(20 * time.Second)
	idle, total := cpuTimes()
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(250 * time.Millisecond):
		}
		i, t := cpuTimes()
		if t > total && float64(i-idle) >= 0.9*float64(t-total) {
			return true
		}
		idle, total = i, t
	}
	return false
}

// cpuTimes is the machine's idle (iowait included) and total CPU time so
// far, in clock ticks, from the first line of /proc/stat.
func cpuTimes() (idle, total uint64) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(data), "\n")
	fields := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
	for i := 1; i < len(fields) && i <= 8; i++ {
		v, _ := strconv.ParseUint(fields[i], 10, 64)
		total += v
		if i == 4 || i == 5 {
			idle += v
		}
	}
	return idle, total
}

// isMounted reports whether mp is a mountpoint now, from /proc/self/mountinfo.
func isMounted(mp string) bool {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		// Field 5 is the mountpoint, with spaces escaped as \040; ours
		// have none.
		if len(f) > 4 && f[4] == mp {
			return true
		}
	}
	return false
}

// waitMounted polls until mp is a mountpoint. exited, if not nil, is closed
// when the daemon process ends, which ends the wait early.
func waitMounted(mp string, exited <-chan struct{}, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for !isMounted(mp) {
		select {
		case <-exited:
			return errors.New("the daemon exited before the mount appeared")
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not mounted after %s", mp, limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

// forceUnmount detaches mp even while files in it are open (a reader stuck
// after a timeout): the daemon is killed afterwards, which fails those reads.
func forceUnmount(mp string) {
	if isMounted(mp) {
		_ = unix.Unmount(mp, unix.MNT_DETACH)
	}
}

// unmount unmounts mp, falling back to a lazy unmount when it is busy.
func unmount(mp string) error {
	if !isMounted(mp) {
		return nil
	}
	err := unix.Unmount(mp, 0)
	if err != nil {
		forceUnmount(mp)
	}
	return err
}

// waitExit waits up to limit for pid, which need not be our child, to
// exit. It uses a pidfd, so a reused PID cannot fool it.
func waitExit(pid int, limit time.Duration) error {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil // already gone
	}
	defer unix.Close(fd)
	deadline := time.Now().Add(limit)
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return fmt.Errorf("process %d still running %s after unmount", pid, limit)
		}
		n, err := unix.Poll(fds, int(left.Milliseconds())+1)
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return err
		case n > 0:
			return nil
		}
	}
}

// killAndWait ends a daemon that we started and that did not exit by itself.
func killAndWait(pid int) {
	if fd, err := unix.PidfdOpen(pid, 0); err == nil {
		_ = unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
		unix.Close(fd)
	}
	_ = waitExit(pid, 10*time.Second)
}

// peakRSS is the high-water mark of pid's resident memory (VmHWM), in bytes.
func peakRSS(pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// outputPeak runs cmd as cmd.Output does and also returns its peak
// resident memory, sampled from /proc while it runs. The kernel's rusage
// figure for a child is not the child's own: Go starts children sharing
// the parent's memory until exec (CLONE_VM), and exec keeps the larger
// high-water mark, so every child would show at least the bench's size.
func outputPeak(cmd *exec.Cmd) ([]byte, int64, error) {
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	if err := cmd.Start(); err != nil {
		return nil, 0, err
	}
	stop := sampleRSS(cmd.Process.Pid)
	err := cmd.Wait()
	return stdout.Bytes(), stop(), err
}

// repoRoot is the directory of the go.mod above the working directory.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory: run from the ssecfs tree")
		}
		dir = parent
	}
}

// firstLine runs a command and returns the first line of its output, for
// version strings.
func firstLine(ctx context.Context, name string, args ...string) string {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil && len(out) == 0 {
		return "unknown (" + err.Error() + ")"
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
}

// parseSize reads sizes written like 512M, 128MiB, 1G or 1048576.
func parseSize(v string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(v))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "IB"), "B")
	mult := int64(1)
	if n := len(t); n > 0 {
		switch t[n-1] {
		case 'K':
			mult = 1 << 10
		case 'M':
			mult = 1 << 20
		case 'G':
			mult = 1 << 30
		}
		if mult > 1 {
			t = t[:n-1]
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q is not a size like 512M", v)
	}
	return n * mult, nil
}

// formatSize writes n in the largest binary unit that divides it.
func formatSize(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

// rateUnits are the units parseRate knows, in bytes per second, longest
// first so that "MiB" is not read as "B". Decimal units, as the report's
// MB/s are; bits because home lines are sold in Mbit/s.
var rateUnits = []struct {
	suffix string
	bytes  float64
}{
	{"kbit", 1e3 / 8}, {"mbit", 1e6 / 8}, {"gbit", 1e9 / 8},
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30},
	{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"b", 1},
}

// parseRate reads a bandwidth like 20MB/s, 2.5MB/s, 160Mbit/s or 20MiB/s
// (the "/s" may be left out) into bytes per second. A unit is required:
// a bare 20 could mean bytes, megabytes or megabits.
func parseRate(v string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(v))
	t = strings.TrimSpace(strings.TrimSuffix(t, "/s"))
	for _, u := range rateUnits {
		num, ok := strings.CutSuffix(t, u.suffix)
		if !ok {
			continue
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
		// Written so that NaN fails too.
		if b := f * u.bytes; err != nil || !(b >= 1 && b <= 1<<50) {
			break
		}
		return int64(f * u.bytes), nil
	}
	return 0, fmt.Errorf("%q is not a rate like 20MB/s, 160Mbit/s or 20MiB/s", v)
}

// formatRate writes bytes per second as MB/s (10^6 bytes), the report's unit.
func formatRate(n int64) string {
	return strconv.FormatFloat(float64(n)/1e6, 'f', -1, 64) + " MB/s"
}

// sampleRSS reads pid's VmHWM every 20 ms until the returned stop is
// called, and stop returns the highest value read. It is for a daemon that
// is not our child, whose peak cannot be read once it has exited.
func sampleRSS(pid int) (stop func() int64) {
	done := make(chan struct{})
	result := make(chan int64, 1)
	go func() {
		var peak int64
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			peak = max(peak, peakRSS(pid))
			select {
			case <-done:
				result <- peak
				return
			case <-tick.C:
			}
		}
	}()
	return func() int64 {
		close(done)
		return <-result
	}
}
