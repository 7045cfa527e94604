//go:build integration

package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssecfs/ssecfs/integration/faultproxy"
)

// The soak: several processes do random operations on the mount and on a
// shadow copy on local disk, through a proxy that injects faults, and every
// outcome, every tree after an fsync, the tree through a fresh mount and the
// bucket as awscli downloads it must match the shadow. SSECFS_SOAK_OPS (per
// worker), SSECFS_SOAK_WORKERS and SSECFS_SOAK_SEED make it longer or
// another run; `make soak` runs a long one. The same seed gives the same
// operations (the faults' timing may differ).

// soakJob is what a worker process is told, in SSECFS_SOAK_WORKER.
type soakJob struct {
	Mount, Shadow, Report string
	Seed                  int64
	Ops                   int
}

// TestSoakWorker is the body of one worker process; it does nothing in a
// normal run.
func TestSoakWorker(t *testing.T) {
	spec := os.Getenv("SSECFS_SOAK_WORKER")
	if spec == "" {
		t.Skip("run by TestSoakAgainstAShadowCopy")
	}
	var job soakJob
	if err := json.Unmarshal([]byte(spec), &job); err != nil {
		t.Fatal(err)
	}
	w := newSoakWorker(job.Mount, job.Shadow, job.Seed)
	trace, err := os.Create(job.Report + ".ops")
	if err != nil {
		t.Fatal(err)
	}
	defer trace.Close()
	w.trace = trace
	for i := 0; i < job.Ops; i++ {
		w.step()
	}
	data, _ := json.Marshal(w)
	if err := os.WriteFile(job.Report, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// soakFaults are the faults of a soak, at rates that retries must absorb.
func soakFaults() []faultproxy.Rule {
	writes := []faultproxy.Kind{faultproxy.Put, faultproxy.Part, faultproxy.Complete, faultproxy.Copy, faultproxy.Delete, faultproxy.Create}
	return []faultproxy.Rule{
		{Action: faultproxy.Reset, Rate: 0.03},
		{Action: faultproxy.Status, Rate: 0.03},
		{Action: faultproxy.Status, Status: 500, Code: "InternalError", Rate: 0.01},
		{Kinds: []faultproxy.Kind{faultproxy.Get}, Action: faultproxy.Truncate, Rate: 0.05},
		{Kinds: writes, Action: faultproxy.LoseAnswer, Rate: 0.03},
		{Action: faultproxy.Delay, Wait: 200 * time.Millisecond, Rate: 0.03},
		{Action: faultproxy.Stall, Rate: 0.005, Max: 2}, // until the client's timeout
	}
}

func TestSoakAgainstAShadowCopy(t *testing.T) {
	workers := envInt("SSECFS_SOAK_WORKERS", 3)
	ops := envInt("SSECFS_SOAK_OPS", 250)
	seed := int64(envInt("SSECFS_SOAK_SEED", 1))
	eachServer(t, func(t *testing.T, s *server) {
		b := s.bucket(t)
		fp := s.faulty(t, seed)
		m := s.mount(t, b, "--endpoint", fp.URL, "--timeout", "5s",
			"--write-back", "0s", "--meta-ttl", "1s")
		shadow := t.TempDir()
		fp.SetRules(soakFaults()...)

		reports := runSoakWorkers(t, m.dir, shadow, workers, ops, seed)
		fp.SetRules() // the checks below read without faults
		total, mism := 0, 0
		counts := map[string]int{}
		for i, r := range reports {
			for op, n := range r.Counts {
				counts[op] += n
				total += n
			}
			for _, x := range r.Mismatches {
				mism++
				if mism <= 20 {
					t.Errorf("worker %d: %s", i, x)
				}
			}
		}
		for _, d := range diffTrees(m.dir, shadow) {
			mism++
			t.Errorf("after the run: %s", d)
		}
		m.unmount(t) // drains: everything must now be in the bucket
		fresh := s.mount(t, b)
		for _, d := range diffTrees(fresh.dir, shadow) {
			mism++
			t.Errorf("through a fresh mount: %s", d)
		}
		down := t.TempDir()
		s.aws(t, append([]string{"s3", "cp", "--recursive", "--quiet", "s3://" + b, down}, sse(secret)...)...)
		for _, d := range diffFiles(down, shadow) {
			mism++
			t.Errorf("through aws s3 cp: %s", d)
		}
		if n := s.assertAllEncrypted(t, b); n == 0 {
			t.Error("the soak left no object in the bucket")
		}
		t.Logf("requests through the proxy: %s", describe(fp.Seen()))
		t.Logf("soak on %s, seed %d: %d operations by %d processes (%s), %d faults injected (%s), %d mismatches",
			s.name, seed, total, workers, describe(counts), fp.Total(), describe(fp.Injected()), mism)
	})
}

// runSoakWorkers runs the workers as separate processes, each in its own
// folder of the mount and of the shadow, and collects their reports.
func runSoakWorkers(t *testing.T, mnt, shadow string, workers, ops int, seed int64) []soakWorker {
	t.Helper()
	reports := make([]soakWorker, workers)
	var wg sync.WaitGroup
	for i := 0; i < workers; i++ {
		dir := fmt.Sprintf("w%d", i)
		for _, root := range []string{mnt, shadow} {
			if err := os.Mkdir(filepath.Join(root, dir), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		job := soakJob{Mount: filepath.Join(mnt, dir), Shadow: filepath.Join(shadow, dir),
			Report: filepath.Join(t.TempDir(), "report.json"), Seed: seed*1000 + int64(i), Ops: ops}
		spec, _ := json.Marshal(job)
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			// The deadline only catches a hang, and then says where.
			ctx, cancel := context.WithTimeout(context.Background(), time.Duration(ops)*time.Second+5*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestSoakWorker$", "-test.count=1")
			cmd.Env = append(os.Environ(), "SSECFS_SOAK_WORKER="+string(spec))
			out, err := cmd.CombinedOutput()
			if d := os.Getenv("SSECFS_KEEP_LOGS"); d != "" { // each worker's operations, in order
				_ = os.MkdirAll(d, 0o700)
				_ = os.WriteFile(filepath.Join(d, fmt.Sprintf("soak-worker-%d.ops", i)), []byte(readLog(job.Report+".ops")), 0o600)
			}
			if err != nil {
				ops := strings.Split(strings.TrimSpace(readLog(job.Report+".ops")), "\n")
				t.Errorf("worker %d: %v\n%s\nlast operations: %q", i, err, out, ops[max(0, len(ops)-3):])
				return
			}
			data, err := os.ReadFile(job.Report)
			if err == nil {
				err = json.Unmarshal(data, &reports[i])
			}
			if err != nil {
				t.Errorf("worker %d report: %v", i, err)
			}
		}(i)
	}
	wg.Wait()
	return reports
}

// diffFiles compares only the files of two trees: a download has no empty
// folders.
func diffFiles(got, want string) []string {
	g, err := treeOf(got)
	if err != nil {
		return []string{err.Error()}
	}
	w, err := treeOf(want)
	if err != nil {
		return []string{err.Error()}
	}
	var diffs []string
	for p, v := range w {
		if v != "dir" && g[p] != v {
			diffs = append(diffs, fmt.Sprintf("%s: %q, want %q", p, orNone(g[p]), v))
		}
	}
	for p, v := range g {
		if _, ok := w[p]; !ok && v != "dir" {
			diffs = append(diffs, fmt.Sprintf("%s: %q, should not exist", p, v))
		}
	}
	sort.Strings(diffs)
	return diffs
}

func describe[K ~string](m map[K]int) string {
	var parts []string
	for k, v := range m {
		parts = append(parts, fmt.Sprintf("%s %d", k, v))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}
