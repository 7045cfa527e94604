// Command bench compares ssecfs with the raw S3 client (aws s3 cp) and
// with the other FUSE filesystems that read SSE-C objects (rclone mount,
// s3fs) on the local test servers (MinIO and Ceph RGW). It runs every
// workload through every tool on every server, cold, checks the bytes, and
// writes a markdown table. See bench/README.md.
//
// Run as root from the ssecfs tree: go run ./bench [-quick]
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

type config struct {
	quick   bool
	servers []string
	tools   []string
	runs    int
	size    int64
	timeout time.Duration
	out     string
	keep    bool
}

func parseFlags() (*config, error) {
	c := &config{}
	servers := flag.String("servers", "minio,rgw", "comma-separated servers: minio, rgw")
	tools := flag.String("tools", "ssecfs,aws,rclone,s3fs", "comma-separated tools: ssecfs, aws, rclone, s3fs")
	size := flag.String("size", "512M", "size of the object read (quick: 128M)")
	flag.BoolVar(&c.quick, "quick", false, "one run of a 128 MiB object, unless -runs or -size say otherwise")
	flag.IntVar(&c.runs, "runs", 3, "runs per tool, workload and server (quick: 1)")
	flag.DurationVar(&c.timeout, "timeout", 5*time.Minute, "limit of one run of one tool; beyond it the run is reported TIMEOUT")
	flag.StringVar(&c.out, "out", "bench/results", "directory for latest.md and latest.json (relative to the tree's root)")
	flag.BoolVar(&c.keep, "keep", false, "keep the work directory (logs, key files) even when every run passed")
	flag.Parse()
	if flag.NArg() != 0 {
		return nil, fmt.Errorf("unexpected arguments %q", flag.Args())
	}
	set := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if c.quick && !set["runs"] {
		c.runs = 1
	}
	if c.quick && !set["size"] {
		*size = "128M"
	}
	var err error
	if c.size, err = parseSize(*size); err != nil {
		return nil, fmt.Errorf("-size: %w", err)
	}
	if c.runs < 1 {
		return nil, errors.New("-runs must be at least 1")
	}
	c.servers, c.tools = splitList(*servers), splitList(*tools)
	for _, s := range c.servers {
		if s != "minio" && s != "rgw" {
			return nil, fmt.Errorf("-servers: unknown server %q (minio, rgw)", s)
		}
	}
	return c, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func main() {
	c, err := parseFlags()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, c); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%s] %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func run(ctx context.Context, c *config) error {
	// Dropping the page cache and mounting FUSE filesystems for every
	// tool need root, as does starting the servers.
	if os.Geteuid() != 0 {
		return errors.New("must run as root (drop_caches, mounts, integration/servers/up.sh)")
	}
	root, err := repoRoot()
	if err != nil {
		return err
	}
	logf("starting the test servers (integration/servers/up.sh)")
	up := exec.CommandContext(ctx, filepath.Join(root, "integration/servers/up.sh"))
	up.Stdout, up.Stderr = os.Stderr, os.Stderr
	if err := up.Run(); err != nil {
		return fmt.Errorf("integration/servers/up.sh: %w", err)
	}
	work, err := os.MkdirTemp("/var/tmp", "ssecfs-bench-")
	if err != nil {
		return err
	}
	logf("work directory %s", work)
	bin, err := buildSSECFS(ctx, root, work)
	if err != nil {
		return err
	}
	makers, err := pickTools(c.tools, bin)
	if err != nil {
		return err
	}
	logf("writing %s of random data", formatSize(c.size))
	w, err := newSeqRead(work, c.size)
	if err != nil {
		return err
	}
	workloads := []Workload{w}
	defer func() {
		for _, wl := range workloads {
			wl.Close()
		}
	}()

	rep := &Report{Config: c, Started: time.Now(), Command: os.Args[1:], Runs: c.runs,
		Versions: map[string]string{}, Bytes: map[string]int64{}}
	for _, wl := range workloads {
		rep.Bytes[wl.Name()] = wl.Bytes()
	}
	if la, err := os.ReadFile("/proc/loadavg"); err == nil {
		rep.Load = strings.Join(strings.Fields(string(la))[:3], " ")
	}
	for _, name := range c.servers {
		if err := runServer(ctx, c, name, work, makers, workloads, rep); err != nil {
			return fmt.Errorf("%w (logs in %s)", err, work)
		}
	}
	rep.collectMeta(ctx, bin)
	md := rep.Markdown()
	fmt.Print(md)
	out := c.out
	if !filepath.IsAbs(out) {
		out = filepath.Join(root, out)
	}
	if err := rep.Write(out, md); err != nil {
		return err
	}
	logf("wrote %s", filepath.Join(out, "latest.md"))
	if rep.AllOK() && !c.keep {
		return os.RemoveAll(work)
	}
	logf("logs and key files kept in %s", work)
	return nil
}

// buildSSECFS builds the daemon from this tree, with the commit as its
// version so that the report says what was measured.
func buildSSECFS(ctx context.Context, root, work string) (string, error) {
	version := "dev"
	if out, err := exec.CommandContext(ctx, "git", "-C", root, "describe", "--always", "--dirty").Output(); err == nil {
		version = strings.TrimSpace(string(out))
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = "/usr/local/go/bin/go"
	}
	bin := filepath.Join(work, "ssecfs")
	logf("building ssecfs %s", version)
	cmd := exec.CommandContext(ctx, goBin, "build", "-ldflags", "-X main.version="+version, "-o", bin, "./cmd/ssecfs")
	cmd.Dir, cmd.Stdout, cmd.Stderr = root, os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building ssecfs: %w", err)
	}
	return bin, nil
}

// pickTools returns constructors of the chosen tools, ssecfs first: it is
// the column the others are compared with.
func pickTools(names []string, bin string) ([]func() Tool, error) {
	all := map[string]func() Tool{"ssecfs": newSSECFS(bin), "aws": newAWS, "rclone": newRclone, "s3fs": newS3fs}
	var out []func() Tool
	for _, n := range []string{"ssecfs", "aws", "rclone", "s3fs"} {
		for _, want := range names {
			if want == n {
				out = append(out, all[n])
			}
		}
	}
	for _, want := range names {
		if all[want] == nil {
			return nil, fmt.Errorf("-tools: unknown tool %q (ssecfs, aws, rclone, s3fs)", want)
		}
	}
	return out, nil
}

// randomString is a fresh name suffix or SSE-C secret (32 characters of
// [a-z0-9] are 165 bits: a valid key as users make them with pwgen).
func randomString(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	const chars = "abcdefghijklmnopqrstuvwxyz0123456789"
	for i := range b {
		b[i] = chars[int(b[i])%len(chars)]
	}
	return string(b)
}

// runServer runs every workload through every tool on one server, in a
// bucket of its own that is removed afterwards.
func runServer(ctx context.Context, c *config, name, work string, makers []func() Tool, workloads []Workload, rep *Report) error {
	srv, err := loadServer(name)
	if err != nil {
		return err
	}
	b := make([]byte, 4)
	rand.Read(b)
	bucket := "ssecfs-bench-" + hex.EncodeToString(b)
	logf("[%s] bucket %s", name, bucket)
	if _, err := runAWS(ctx, srv, "s3", "mb", "s3://"+bucket); err != nil {
		return err
	}
	defer func() {
		// Not ctx: the bucket goes even after an interrupt.
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		if _, err := runAWS(cctx, srv, "s3", "rb", "--force", "s3://"+bucket); err != nil {
			logf("[%s] removing bucket: %v", name, err)
		}
	}()
	secret := randomString(32)
	base := &Target{Server: srv, Bucket: bucket, Secret: secret}
	for _, w := range workloads {
		logf("[%s] uploading for %s", name, w.Name())
		if err := w.Prepare(ctx, base); err != nil {
			return err
		}
	}
	var tools []Tool
	for _, mk := range makers {
		t := mk()
		tgt := *base
		tgt.Dir = filepath.Join(work, name, slug(t.Name()))
		if err := os.MkdirAll(tgt.Dir, 0o700); err != nil {
			return err
		}
		if err := t.Setup(ctx, &tgt); err != nil {
			return fmt.Errorf("%s setup on %s: %w", t.Name(), name, err)
		}
		rep.Versions[t.Name()] = t.Version(ctx)
		tools = append(tools, t)
	}
	for _, w := range workloads {
		// A tool that failed once is not run again for this workload:
		// the cell reports the failure, and a hung tool would cost the
		// timeout every run.
		out := map[string]bool{}
		for run := 1; run <= c.runs; run++ {
			// Rotate the order, so that no tool always goes first
			// after the upload or always follows the same tool.
			for i := range tools {
				t := tools[(i+run-1)%len(tools)]
				if out[t.Name()] {
					continue
				}
				r := runOnce(ctx, c.timeout, w, t)
				if ctx.Err() != nil {
					return ctx.Err()
				}
				r.Server, r.Run = name, run
				rep.Add(r)
				logf("[%s] %s, run %d/%d, %s: %s", name, w.Name(), run, c.runs, t.Name(), r.Summary(w.Bytes()))
				if r.Status != OK {
					out[t.Name()] = true
				}
			}
		}
	}
	return nil
}

func slug(s string) string { return strings.ReplaceAll(s, " ", "-") }

// runOnce is one cold run: a fresh mount, empty caches, the workload
// under a time limit, the daemon's peak memory, unmount.
func runOnce(ctx context.Context, limit time.Duration, w Workload, t Tool) Record {
	r := Record{Workload: w.Name(), Tool: t.Name()}
	o := func() Outcome {
		if err := t.Mount(ctx); err != nil {
			return failed(err)
		}
		if err := dropCaches(); err != nil {
			return failed(fmt.Errorf("drop_caches: %w", err))
		}
		rctx, cancel := context.WithTimeout(ctx, limit)
		defer cancel()
		done := make(chan Outcome, 1)
		go func() { done <- w.Run(rctx, t) }()
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
	}()
	r.Status, r.Seconds = o.Status, o.Dur.Seconds()
	if o.Status == Timeout {
		o.Err = fmt.Errorf("not done after %s", limit)
	}
	if o.Err != nil {
		r.Error = o.Err.Error()
	}
	r.PeakRSS = t.PeakRSS()
	if err := t.Unmount(context.Background()); err != nil {
		// Worth knowing, but the bytes were read (or not) already.
		logf("%s: %v", t.Name(), err)
		r.Notes = append(r.Notes, err.Error())
	}
	return r
}
