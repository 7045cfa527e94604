package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/ssecfs/ssecfs/store"
)

// alerter runs --on-failure CMD when a file fails for good or the mount
// stays offline, at most once per every: a failure within that time is
// held, and the next run tells the first one held and how many more it
// folded (SSECFS_FOLDED), so that a thousand files refused in a minute
// make one notice, not a thousand.
type alerter struct {
	cmd        string
	mountpoint string
	target     string
	every      time.Duration
	log        *slog.Logger
	keyEnv     string // the --key-env variable: never passed on
	run        func(env []string)

	mu     sync.Mutex
	last   time.Time   // when CMD last ran; guarded by mu
	held   *alert      // the first failure not yet told; guarded by mu
	folded int         // failures after held, not told; guarded by mu
	timer  *time.Timer // fires held; guarded by mu
}

type alert struct{ event, path, reason string }

func newAlerter(c *mountConfig, log *slog.Logger) *alerter {
	if c.onFailure == "" {
		return nil
	}
	a := &alerter{cmd: c.onFailure, mountpoint: c.mountpoint, target: c.bucket + "/" + c.prefix,
		every: c.failureEvery, log: log, keyEnv: c.keyEnv}
	a.run = a.exec
	return a
}

// report is told of one failure. It never blocks: the stage calls it with
// a file locked.
func (a *alerter) report(event, path, reason string) {
	if a == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case a.held != nil:
		a.folded++
	case a.last.IsZero() || time.Since(a.last) >= a.every:
		a.last = time.Now()
		go a.run(a.env(alert{event, path, reason}, 0))
	default:
		a.held = &alert{event, path, reason}
		a.timer = time.AfterFunc(time.Until(a.last.Add(a.every)), a.fire)
	}
}

// fire tells the failure held and what was folded after it.
func (a *alerter) fire() {
	a.mu.Lock()
	held, folded := a.held, a.folded
	a.held, a.folded, a.last = nil, 0, time.Now()
	a.mu.Unlock()
	if held != nil {
		a.run(a.env(*held, folded))
	}
}

// stop runs what is held at once: the mount ends.
func (a *alerter) stop() {
	if a == nil {
		return
	}
	a.mu.Lock()
	if a.timer != nil {
		a.timer.Stop()
	}
	a.mu.Unlock()
	a.fire()
}

// secretEnv are variables CMD never gets: credentials a notice does not
// need. The SSE-C key itself is never in the environment but for
// --key-env's variable, which is dropped too.
var secretEnv = []string{"AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "OS_PASSWORD",
	"OS_APPLICATION_CREDENTIAL_SECRET", "OS_TOKEN", "NOTIFY_SOCKET", daemonEnv}

func (a *alerter) env(al alert, folded int) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "SSECFS_") || name == a.keyEnv {
			continue
		}
		secret := false
		for _, s := range secretEnv {
			secret = secret || name == s
		}
		if !secret {
			env = append(env, kv)
		}
	}
	return append(env, "SSECFS_EVENT="+al.event, "SSECFS_MOUNTPOINT="+a.mountpoint, "SSECFS_TARGET=s3://"+a.target,
		"SSECFS_PATH="+al.path, "SSECFS_REASON="+al.reason, fmt.Sprintf("SSECFS_FOLDED=%d", folded))
}

// exec runs CMD with sh -c, bounded to a minute, its output logged.
func (a *alerter) exec(env []string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", a.cmd)
	cmd.Env = env
	cmd.Dir = "/"
	out, err := cmd.CombinedOutput()
	if len(out) > 4096 {
		out = out[:4096]
	}
	if err != nil {
		a.log.Warn("--on-failure command failed", "err", err, "output", string(out))
		return
	}
	a.log.Info("--on-failure command run", "output", string(out))
}

// watchOffline reports an outage once it has lasted limit, once per
// outage, until stop is closed.
func (a *alerter) watchOffline(link *store.Link, limit time.Duration, stop <-chan struct{}) {
	if a == nil {
		return
	}
	t := time.NewTicker(min(limit/4+time.Second, 10*time.Second))
	defer t.Stop()
	var told time.Time // the outage already reported
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		since, err := link.Offline()
		if since.IsZero() || since.Equal(told) || time.Since(since) < limit {
			continue
		}
		told = since
		reason := fmt.Sprintf("the server has not answered since %s", since.Format(time.RFC3339))
		if err != nil {
			reason += ": " + err.Error()
		}
		a.report("offline", "", reason)
	}
}

// pathOf is where a key shows in the mount.
func pathOf(c *mountConfig, key string) string {
	return strings.TrimSuffix(c.mountpoint, "/") + "/" + strings.TrimPrefix(key, c.prefix)
}
