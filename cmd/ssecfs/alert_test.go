package main

import (
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// The first failure runs the command at once; those within the interval
// after it are held, and one later run tells the first held and how many
// it folded. The command's environment names the failure, never the key.
func TestOnFailureRunsAtOnceThenFoldsWhatComesWithinTheInterval(t *testing.T) {
	t.Setenv("SSECFS_TEST_KEY_VAR", "0123456789abcdef0123456789abcdef")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "s3cret")
	var mu sync.Mutex
	var runs [][]string
	a := &alerter{cmd: "true", mountpoint: "/mnt/b", target: "b/", every: time.Hour,
		log: slog.New(slog.DiscardHandler), keyEnv: "SSECFS_TEST_KEY_VAR"}
	ran := make(chan struct{}, 8)
	a.run = func(env []string) {
		mu.Lock()
		runs = append(runs, env)
		mu.Unlock()
		ran <- struct{}{}
	}
	a.report("upload_failed", "/mnt/b/one", "access denied (403)")
	<-ran
	a.report("upload_failed", "/mnt/b/two", "access denied (403)")
	a.report("upload_failed", "/mnt/b/three", "access denied (403)")
	a.report("offline", "", "no answer")
	mu.Lock()
	if len(runs) != 1 {
		t.Fatalf("%d runs within the interval, want 1", len(runs))
	}
	mu.Unlock()
	a.fire() // the interval is over (the timer's call)
	<-ran
	mu.Lock()
	defer mu.Unlock()
	if len(runs) != 2 {
		t.Fatalf("%d runs, want 2", len(runs))
	}
	for i, want := range [][]string{
		{"SSECFS_EVENT=upload_failed", "SSECFS_PATH=/mnt/b/one", "SSECFS_REASON=access denied (403)", "SSECFS_FOLDED=0", "SSECFS_MOUNTPOINT=/mnt/b"},
		{"SSECFS_EVENT=upload_failed", "SSECFS_PATH=/mnt/b/two", "SSECFS_FOLDED=2", "SSECFS_TARGET=s3://b/"},
	} {
		for _, w := range want {
			if !slices.Contains(runs[i], w) {
				t.Errorf("run %d: no %s in its environment", i+1, w)
			}
		}
		for _, kv := range runs[i] {
			if strings.Contains(kv, "0123456789abcdef") || strings.Contains(kv, "s3cret") {
				t.Errorf("run %d got a secret: %s", i+1, kv)
			}
		}
	}
	a.fire() // nothing held: nothing runs
	select {
	case <-ran:
		t.Fatal("a run with nothing held")
	default:
	}
}
