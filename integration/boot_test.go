//go:build integration

package integration

import (
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// unitCommand returns the ExecStart= of the repository's system unit,
// expanded as systemd does with the variables of a NAME.conf: "$VAR"
// alone becomes its words, "${VAR}" is replaced in place inside one word.
func unitCommand(t *testing.T, conf map[string]string) []string {
	t.Helper()
	unit, err := os.ReadFile("../dist/systemd/ssecfs@.service")
	if err != nil {
		t.Fatal(err)
	}
	var line string
	for _, l := range strings.Split(string(unit), "\n") {
		if strings.HasPrefix(l, "ExecStart=") {
			line = strings.TrimPrefix(l, "ExecStart=")
		}
	}
	if line == "" {
		t.Fatal("the unit has no ExecStart=")
	}
	var argv []string
	for _, w := range strings.Fields(line) {
		if strings.HasPrefix(w, "$") && !strings.HasPrefix(w, "${") {
			argv = append(argv, strings.Fields(conf[w[1:]])...)
			continue
		}
		for k, v := range conf {
			w = strings.ReplaceAll(w, "${"+k+"}", v)
		}
		argv = append(argv, strings.ReplaceAll(w, "@BINDIR@", filepath.Dir(binary)))
	}
	return argv
}

// A boot mount started before the network (here: nothing listens yet
// where the endpoint points) fails at once with the reason, tells systemd
// nothing is ready, and leaves no mount behind; the unit's restart, once
// the server answers at that address, mounts. The command line is the
// unit's own ExecStart=, expanded from a NAME.conf.
func TestABootMountBeforeTheNetworkFailsAndTheRestartMounts(t *testing.T) {
	s := loadServer(t, "rgw")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // the address is now refused, as a host not yet on the network
	b, mp := s.bucket(t), t.TempDir()
	argv := unitCommand(t, map[string]string{
		"SSECFS_SOURCE":      "s3://" + b,
		"SSECFS_MOUNTPOINT":  mp,
		"SSECFS_OPTIONS":     "--endpoint https://" + addr + " --key-file " + keyFile(t, secret) + " --log-file " + filepath.Join(t.TempDir(), "log"),
		"SSECFS_KEY_COMMAND": "",
	})
	sockName := "@ssecfs-test-boot-" + filepath.Base(t.TempDir())
	msgs := notifySocket(t, sockName)
	start := func(ctx context.Context) (*exec.Cmd, *strings.Builder) {
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.Env = append(s.env(), "NOTIFY_SOCKET="+sockName)
		var stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stderr, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd, &stderr
	}

	// The first start: the server cannot be reached.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd, out := start(ctx)
	err = cmd.Wait()
	if ctx.Err() != nil {
		t.Fatalf("the mount waited instead of failing: %s", out)
	}
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("a mount that cannot reach the server: %v (want exit 1, which Restart=on-failure restarts): %s", err, out)
	}
	if !strings.Contains(out.String(), "cannot reach the server") {
		t.Fatalf("the reason is not given: %s", out)
	}
	if isMounted(mp) {
		t.Fatal("a failed start left a mount behind")
	}
	for len(msgs) > 0 {
		if m := <-msgs; strings.Contains(m, "READY=1") {
			t.Fatalf("READY=1 from a start that failed: %q", m)
		}
	}

	// The network is up: the restart mounts, with the same command line.
	s.tlsProxyAt(t, addr, func(rt http.RoundTripper) http.RoundTripper { return rt })
	cmd, out = start(ctx)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	for ready := false; !ready; {
		select {
		case m := <-msgs:
			ready = strings.Contains(m, "READY=1")
		case err := <-exited:
			t.Fatalf("the restart exited (%v): %s", err, out)
		case <-ctx.Done():
			t.Fatalf("no READY=1 from the restart: %s", out)
		}
	}
	if err := os.WriteFile(filepath.Join(mp, "f"), []byte("after boot"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := <-exited; err != nil {
		t.Fatalf("stop: %v: %s", err, out)
	}
	if got := s.aws(t, append([]string{"s3", "cp", "s3://" + b + "/f", "-"}, sse(secret)...)...); got != "after boot" {
		t.Fatalf("the file written after the restart: %q", got)
	}
}
