package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ssecfs/ssecfs/integration/faultproxy"
)

// runServer runs every workload through every tool on one server, in a
// bucket of its own that is removed afterwards.
func runServer(ctx context.Context, c *config, name, work string, makers []func() Tool, workloads []Workload, rep *Report) error {
	srv, counter, closeProxy, err := reachServer(ctx, c, name)
	if err != nil {
		return err
	}
	defer closeProxy()
	base, removeBucket, err := makeBucket(ctx, srv, name)
	if err != nil {
		return err
	}
	defer removeBucket()
	for _, w := range workloads {
		logf("[%s] preparing %s", name, w.Name())
		if err := w.Prepare(ctx, base); err != nil {
			return err
		}
	}
	tools, err := setupTools(ctx, base, name, work, makers, rep)
	if err != nil {
		return err
	}
	var kept []Workload
	for _, w := range workloads {
		if _, ok := w.(keptBucket); ok {
			kept = append(kept, w)
			continue
		}
		if err := runWorkload(ctx, c, name, w, tools, counter, rep); err != nil {
			return err
		}
	}
	if len(kept) == 0 {
		return nil
	}
	// The workloads of a kept bucket share it (nightly.go), and tools of
	// their own set up on it.
	t, err := kept[0].(keptBucket).Target(ctx, srv, name)
	if err != nil {
		return err
	}
	tools, err = setupTools(ctx, t, name+"-kept", work, c.keptMakers, rep)
	if err != nil {
		return err
	}
	for _, w := range kept {
		if err := runWorkload(ctx, c, name, w, tools, counter, rep); err != nil {
			return err
		}
	}
	return nil
}

// reachServer loads the server's settings, its request counter (nil if it
// cannot count), and with --latency or --uplink a proxy in front of it
// that every tool, the setup and the checks go through.
func reachServer(ctx context.Context, c *config, name string) (*Server, reqCounter, func(), error) {
	srv, err := loadServer(name)
	if err != nil {
		return nil, nil, nil, err
	}
	// Counted at the server itself, not through the proxy.
	counter, err := newReqCounter(srv)
	if err != nil {
		return nil, nil, nil, err
	}
	if _, err := counter.snapshot(ctx); err != nil {
		logf("[%s] requests will not be counted: %v", name, err)
		counter = nil
	}
	if c.latency <= 0 && c.uplink <= 0 {
		return srv, counter, func() {}, nil
	}
	u, err := url.Parse(srv.Endpoint)
	if err != nil {
		return nil, nil, nil, err
	}
	p, err := faultproxy.NewLink(u.Host, faultproxy.LinkOptions{OneWay: c.latency, Up: c.uplink})
	if err != nil {
		return nil, nil, nil, err
	}
	srv.Endpoint = "https://" + p.Addr
	logf("[%s] through a proxy (%s): %s", name, c.network(), srv.Endpoint)
	return srv, counter, func() { p.Close() }, nil
}

// makeBucket makes the run's bucket and its SSE-C secret; the function it
// returns removes the bucket, even after an interrupt.
func makeBucket(ctx context.Context, srv *Server, name string) (*Target, func(), error) {
	b := make([]byte, 4)
	rand.Read(b)
	bucket := "ssecfs-bench-" + hex.EncodeToString(b)
	logf("[%s] bucket %s", name, bucket)
	if _, err := runAWS(ctx, srv, "s3", "mb", "s3://"+bucket); err != nil {
		return nil, nil, err
	}
	remove := func() {
		// Not ctx: the bucket goes even after an interrupt.
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		if _, err := runAWS(cctx, srv, "s3", "rb", "--force", "s3://"+bucket); err != nil {
			logf("[%s] removing bucket: %v", name, err)
		}
	}
	secret := randomString(32)
	s3, err := newObjStore(srv, bucket, secret)
	if err != nil {
		remove()
		return nil, nil, err
	}
	return &Target{Server: srv, Bucket: bucket, Secret: secret, S3: s3}, remove, nil
}

// setupTools makes each tool's folder and sets it up.
func setupTools(ctx context.Context, base *Target, name, work string, makers []func() Tool, rep *Report) ([]Tool, error) {
	var tools []Tool
	for _, mk := range makers {
		t := mk()
		tgt := *base
		tgt.Dir = filepath.Join(work, name, slug(t.Name()))
		if err := os.MkdirAll(tgt.Dir, 0o700); err != nil {
			return nil, err
		}
		if err := t.Setup(ctx, &tgt); err != nil {
			return nil, fmt.Errorf("%s setup on %s: %w", t.Name(), name, err)
		}
		rep.Versions[t.Name()] = t.Version(ctx)
		tools = append(tools, t)
	}
	return tools, nil
}

// runWorkload runs one workload --runs times through every tool. A tool
// that failed once is not run again for this workload: the cell reports
// the failure, and a hung tool would cost the timeout every run.
func runWorkload(ctx context.Context, c *config, name string, w Workload, tools []Tool, counter reqCounter, rep *Report) error {
	out := map[string]bool{}
	if s, ok := w.(seeder); ok {
		for _, t := range tools {
			r := seedOnce(ctx, c.timeout, s, t)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if r.Status != OK {
				r.Workload, r.Server = w.Name(), name
				rep.Add(r)
				out[t.Name()] = true
				logf("[%s] %s, writing the files first, %s: %s", name, w.Name(), t.Name(), r.Summary(0, 0))
			}
		}
	}
	for run := 1; run <= c.runs; run++ {
		// Rotate the order, so that no tool always goes first after the
		// upload or always follows the same tool.
		for i := range tools {
			t := tools[(i+run-1)%len(tools)]
			if out[t.Name()] {
				continue
			}
			r := runOnce(ctx, c.timeout, w, t, counter)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			r.Server, r.Run = name, run
			rep.Add(r)
			logf("[%s] %s, run %d/%d, %s: %s", name, w.Name(), run, c.runs, t.Name(), r.Summary(w.Bytes(), w.Files()))
			if r.Status != OK {
				out[t.Name()] = true
			}
		}
	}
	return nil
}

// slug is a tool's name as a file name: "rclone writes" → "rclone-writes".
func slug(s string) string { return strings.ReplaceAll(s, " ", "-") }

// runOnce is one cold run: a fresh mount, empty caches, the workload
// under a time limit, unmount, the daemon's peak memory, and the requests
// the server answered during the timed part (if counter is not nil).
func runOnce(ctx context.Context, limit time.Duration, w Workload, t Tool, counter reqCounter) Record {
	r := Record{Workload: w.Name(), Tool: t.Name()}
	sw := &stopwatch{counter: counter}
	ctx = withWatch(ctx, sw)
	o := func() Outcome {
		if err := t.Mount(ctx); err != nil {
			return failed(err)
		}
		if err := dropCaches(); err != nil {
			return failed(fmt.Errorf("drop_caches: %w", err))
		}
		if !settle(ctx) {
			logf("the machine was still busy 20 s after drop_caches; %s runs anyway", t.Name())
		}
		return limited(ctx, limit, w.Run, t)
	}()
	r.Status, r.Seconds, r.Changes = o.Status, o.Dur.Seconds(), o.Changes
	if o.Status == OK {
		r.Requests = sw.requests
		if sw.err != nil {
			r.Notes = append(r.Notes, "requests not counted: "+sw.err.Error())
		}
	}
	if o.Status == Timeout {
		o.Err = fmt.Errorf("not done after %s", limit)
	}
	if o.Err != nil {
		r.Error = o.Err.Error()
	}
	if err := t.Unmount(context.Background()); err != nil {
		// Worth knowing, but the bytes were read (or not) already.
		logf("%s: %v", t.Name(), err)
		r.Notes = append(r.Notes, err.Error())
	}
	r.PeakRSS = t.PeakRSS()
	return r
}

// seedOnce writes what a seeder needs through t before the timed runs,
// under the same time limit.
func seedOnce(ctx context.Context, limit time.Duration, s seeder, t Tool) Record {
	r := Record{Tool: t.Name()}
	o := func() Outcome {
		if err := t.Mount(ctx); err != nil {
			return failed(err)
		}
		return limited(ctx, limit, s.Seed, t)
	}()
	if err := t.Unmount(context.Background()); err != nil && o.Status == OK {
		o = failed(err)
	}
	r.Status = o.Status
	if o.Err != nil {
		r.Error = "writing the files before the runs: " + o.Err.Error()
	} else if o.Status == Timeout {
		r.Error = fmt.Sprintf("writing the files before the runs: not done after %s", limit)
	}
	return r
}

// limited runs fn under limit; past it the outcome is Timeout.
func limited(ctx context.Context, limit time.Duration, fn func(context.Context, Tool) Outcome, t Tool) Outcome {
	rctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	done := make(chan Outcome, 1)
	go func() { done <- fn(rctx, t) }()
	select {
	case o := <-done:
		if o.Status != OK && errors.Is(rctx.Err(), context.DeadlineExceeded) {
			o = Outcome{Status: Timeout}
		}
		return o
	case <-rctx.Done():
		// A reader between two reads stops at once and closes the
		// file, so that the unmount is not busy. One stuck in the
		// kernel stays; Unmount then kills the daemon, which ends it.
		select {
		case <-done:
		case <-time.After(10 * time.Second):
		}
		return Outcome{Status: Timeout}
	}
}
