package main

import (
	"bufio"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"

	"github.com/ssecfs/ssecfs/keys"
)

// daemonEnv marks the background process. The key never travels in the
// environment or the arguments: the parent hands it over on a pipe (fd 3),
// and the daemon reports readiness on another (fd 4).
const daemonEnv = "SSECFS_DAEMON"

// startDaemon starts the background process and waits until it says the
// mount is ready or why it is not.
func startDaemon(c *mountConfig, key *keys.Key) int {
	logPath := c.logFile
	if logPath == "" {
		logPath = defaultLogPath(c.mountpoint)
	}
	logf, err := openLog(logPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ssecfs mount:", err)
		return 1
	}
	defer logf.Close()
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "ssecfs mount:", err)
		return 1
	}
	keyR, keyW, err := os.Pipe()
	if err != nil {
		fmt.Fprintln(os.Stderr, "ssecfs mount:", err)
		return 1
	}
	statusR, statusW, err := os.Pipe()
	if err != nil {
		fmt.Fprintln(os.Stderr, "ssecfs mount:", err)
		return 1
	}
	args := append([]string{"mount", "--log-file", logPath}, c.args...)
	cmd := exec.Command(exe, args...)
	cmd.Env = append(daemonEnviron(), daemonEnv+"=1")
	cmd.ExtraFiles = []*os.File{keyR, statusW}
	cmd.Stderr = logf // a crash's stack trace lands in the log
	// The daemon parses the same arguments from the same folder, so that
	// relative paths mean the same; then it moves to / (runDaemon).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "ssecfs mount: starting the daemon:", err)
		return 1
	}
	keyR.Close()
	statusW.Close()

	enc := make([]byte, base64.StdEncoding.EncodedLen(keys.Size))
	base64.StdEncoding.Encode(enc, key.Bytes())
	_, werr := keyW.Write(enc)
	clear(enc)
	keyW.Close()
	if werr != nil {
		fmt.Fprintln(os.Stderr, "ssecfs mount: handing the key to the daemon:", werr)
		return 1
	}

	line, _ := bufio.NewReader(statusR).ReadString('\n')
	statusR.Close()
	line = strings.TrimSpace(line)
	switch {
	case line == "ok":
		_ = cmd.Process.Release()
		return 0
	case strings.HasPrefix(line, "error: "):
		fmt.Fprintln(os.Stderr, "ssecfs mount:", strings.TrimPrefix(line, "error: "))
	default:
		fmt.Fprintf(os.Stderr, "ssecfs mount: the daemon exited before the mount was ready; see %s\n", logPath)
	}
	_ = cmd.Wait()
	return 1
}

// daemonEnviron is the environment the daemon inherits: without the
// OpenStack credentials (OS_PASSWORD, an application credential secret),
// which it never needs, since the key reaches it on a pipe.
func daemonEnviron() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OS_") {
			out = append(out, kv)
		}
	}
	return out
}

// runDaemon is the background process: key from fd 3, readiness to fd 4.
func runDaemon(c *mountConfig) int {
	os.Unsetenv(daemonEnv)
	_ = os.Chdir("/") // hold no folder busy; paths are absolute by now
	keyF := os.NewFile(3, "key")
	status := os.NewFile(4, "status")
	if keyF == nil || status == nil {
		fmt.Fprintln(os.Stderr, "ssecfs: daemon started without its pipes")
		return 1
	}
	key, err := keys.FromReader(keyF)
	keyF.Close()
	report := func(err error) {
		msg := "ok"
		if err != nil {
			msg = "error: " + strings.ReplaceAll(err.Error(), "\n", " ")
		}
		fmt.Fprintln(status, msg)
		status.Close()
	}
	if err != nil {
		report(errors.New("reading the key from the parent: " + err.Error()))
		return 1
	}
	defer key.Wipe()
	// Nothing of the daemon may hold the terminal; standard output and
	// error follow the log through its rotations (a crash's stack trace).
	if null, err := os.Open(os.DevNull); err == nil {
		_ = syscall.Dup2(int(null.Fd()), 0)
	}
	logf, err := openLogFile(c.logFile, c.logMaxSize, c.logKeep, true)
	if err != nil {
		report(err)
		return 1
	}
	defer logf.Close()
	return serve(c, key, logf, report, nil)
}
