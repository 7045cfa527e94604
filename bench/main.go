// Command bench compares ssecfs with the raw S3 client (aws s3 cp) and
// with the other FUSE filesystems that read and write SSE-C objects
// (rclone mount, s3fs) on the local test servers (MinIO and Ceph RGW). It
// runs every workload through every tool on every server, cold, times
// writes until the data is in the bucket, checks the bytes and the
// encryption, and writes a markdown table. See bench/README.md.
//
// Run as root from the ssecfs tree: go run ./bench [-quick]
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

type config struct {
	quick     bool
	servers   []string
	tools     []string
	workloads []string
	runs      int
	size      int64
	timeout   time.Duration
	out       string
	keep      bool
	latency   time.Duration // added one way, each direction, by a proxy
	uplink    int64         // bytes per second client→server through the proxy, shared; 0: uncapped
	options   []string      // extra options of "ssecfs mount", for tuning runs
	// nightlyFiles is the size of the nightly tree; keptMakers, the tools
	// run in kept buckets (nightly.go).
	nightlyFiles int
	nightlyWalks []string
	keptMakers   []func() Tool
}

func parseFlags() (*config, error) {
	c := &config{}
	servers := flag.String("servers", "minio,rgw", "comma-separated servers: minio, rgw")
	tools := flag.String("tools", strings.Join(toolNames, ","), "comma-separated tools: "+strings.Join(toolNames, ", "))
	workloads := flag.String("workloads", strings.Join(workloadNames[:len(workloadNames)-4], ","),
		"comma-separated workloads: "+strings.Join(workloadNames, ", ")+` ("first", rsync -a of 20,000 small files into an empty folder, "scale", cp -r of 10,000 and of 100,000 small files, "backup", -size of 8 MiB files copied in, and "nightly", walks of a kept tree of -nightly-files files, are not run by default: make bench-first, make bench-scale, make bench-backup, make bench-nightly)`)
	flag.IntVar(&c.nightlyFiles, "nightly-files", 100000, "files of the nightly tree (in folders of 100), kept with its bucket between runs")
	walks := flag.String("nightly-walks", strings.Join(nightlyWalks, ","), "comma-separated walks of the nightly tree: "+strings.Join(nightlyWalks, ", "))
	size := flag.String("size", "1G", "size of the file read and written (quick: 128M)")
	flag.BoolVar(&c.quick, "quick", false, "one run of a 128 MiB object, unless -runs or -size say otherwise")
	flag.IntVar(&c.runs, "runs", 3, "runs per tool, workload and server (quick: 1)")
	flag.DurationVar(&c.timeout, "timeout", 5*time.Minute, "limit of one run of one tool; beyond it the run is reported TIMEOUT")
	flag.StringVar(&c.out, "out", "bench/results", "directory for latest.md and latest.json (relative to the tree's root)")
	flag.DurationVar(&c.latency, "latency", 0, "one-way delay added in each direction by a pipelined loopback proxy in front of each server (e.g. 20ms); results go to latest-<latency>.md")
	uplink := flag.String("uplink", "", "cap of the client→server direction, shared by every connection as a home uplink is, played by the loopback proxy in front of each server "+
		"(with -latency if given): a rate like 20MB/s (10^6 bytes), 160Mbit/s or 20MiB/s; reads are not capped; results go to latest[-<latency>]-up<MB>MBps.md")
	options := flag.String("ssecfs-options", "", "extra options of \"ssecfs mount\", space-separated (e.g. \"--read-ahead 128M --cache-size 320M\"); shown in the results' setup")
	flag.BoolVar(&c.keep, "keep", false, "keep the work directory (logs, key files) even when every run passed")
	flag.Parse()
	c.options = strings.Fields(*options)
	c.nightlyWalks = splitList(*walks)
	for _, w := range c.nightlyWalks {
		if !slices.Contains(nightlyWalks, w) {
			return nil, fmt.Errorf("-nightly-walks: unknown walk %q (%s)", w, strings.Join(nightlyWalks, ", "))
		}
	}
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
	if *uplink != "" {
		if c.uplink, err = parseRate(*uplink); err != nil {
			return nil, fmt.Errorf("-uplink: %w", err)
		}
	}
	if c.runs < 1 {
		return nil, errors.New("-runs must be at least 1")
	}
	c.servers, c.tools, c.workloads = splitList(*servers), splitList(*tools), splitList(*workloads)
	for _, w := range c.workloads {
		if !slices.Contains(workloadNames, w) {
			return nil, fmt.Errorf("-workloads: unknown workload %q (%s)", w, strings.Join(workloadNames, ", "))
		}
	}
	for _, s := range c.servers {
		if s != "minio" && s != "rgw" {
			return nil, fmt.Errorf("-servers: unknown server %q (minio, rgw)", s)
		}
	}
	return c, nil
}

// resultName is the base name of the result files: one per network
// (latency and uplink cap), e.g. latest-20ms-up20MBps.
func (c *config) resultName() string {
	name := "latest"
	if slices.Equal(c.workloads, []string{"nightly"}) {
		name = "nightly" // beside the main runs' results, not over them
	}
	if c.latency > 0 {
		name += "-" + c.latency.String()
	}
	if c.uplink > 0 {
		// formatRate without the space and the slash, for a file name.
		name += "-up" + strings.TrimSuffix(formatRate(c.uplink), " MB/s") + "MBps"
	}
	return name
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
	makers, err := pickTools(c.tools, bin, c.options)
	if err != nil {
		return err
	}
	c.keptMakers = keptTools(c.tools, bin, c.options)
	workloads, err := makeWorkloads(c, work)
	defer func() {
		for _, wl := range workloads {
			wl.Close()
		}
	}()
	if err != nil {
		return err
	}

	rep := &Report{Config: c, Started: time.Now(), Command: os.Args[1:], Runs: c.runs,
		Versions: map[string]string{}, Bytes: map[string]int64{}, Files: map[string]int{}}
	for _, wl := range workloads {
		rep.Bytes[wl.Name()], rep.Files[wl.Name()] = wl.Bytes(), wl.Files()
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
	logf("wrote %s", filepath.Join(out, c.resultName()+".md"))
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

var (
	toolNames     = []string{"ssecfs", "aws", "rclone", "rclone-writes", "s3fs"}
	workloadNames = []string{"read", "random", "write", "cp", "rsync", "ls", "find", "first", "scale", "backup", "nightly"}
)

// pickTools returns constructors of the chosen tools, ssecfs first: it is
// the column the others are compared with.
func pickTools(names []string, bin string, options []string) ([]func() Tool, error) {
	all := map[string]func() Tool{"ssecfs": newSSECFS(bin, options), "aws": newAWS, "rclone": newRclone,
		"rclone-writes": newRcloneWrites, "s3fs": newS3fs}
	var out []func() Tool
	for _, n := range toolNames {
		if slices.Contains(names, n) {
			out = append(out, all[n])
		}
	}
	for _, want := range names {
		if all[want] == nil && want != "ssecfs-new" {
			return nil, fmt.Errorf("-tools: unknown tool %q (%s, ssecfs-new)", want, strings.Join(toolNames, ", "))
		}
	}
	// The physical reference: cold read, big write and listings.
	return append(out, newRawClient), nil
}

// keptTools are the tools of the kept buckets' walks: ssecfs as users run
// it (what it learnt kept between mounts) and on a new machine (with the
// default tools, or -tools ssecfs,ssecfs-new: it sends a HEAD per file, the
// longest runs), the other
// chosen tools but rclone writes (the same as rclone off for reads), and
// the floor, the raw listing.
func keptTools(names []string, bin string, options []string) []func() Tool {
	var out []func() Tool
	for _, n := range toolNames {
		switch {
		case !slices.Contains(names, n):
		case n == "ssecfs":
			out = append(out, newSSECFSKept(bin, options))
			if slices.Contains(names, "ssecfs-new") || slices.Equal(names, toolNames) {
				out = append(out, newSSECFSNew(bin, options))
			}
		case n == "aws":
			out = append(out, newAWS)
		case n == "rclone":
			out = append(out, newRclone)
		case n == "s3fs":
			out = append(out, newS3fs)
		}
	}
	if slices.Contains(names, "ssecfs-new") && !slices.Contains(names, "ssecfs") {
		out = append([]func() Tool{newSSECFSNew(bin, options)}, out...)
	}
	return append(out, newRawLister)
}

// makeWorkloads makes the chosen workloads and their local data, in the
// order they run: "cp" is cp -r in, then cp -r out of what came in; the
// random reads read the cold read's object.
func makeWorkloads(c *config, work string) ([]Workload, error) {
	var out []Workload
	var big *seqRead
	var files, backup *tree
	var err error
	if slices.ContainsFunc(c.workloads, func(w string) bool { return w == "read" || w == "random" || w == "write" }) {
		logf("writing %s of random data", formatSize(c.size))
		if big, err = newSeqRead(work, c.size); err != nil {
			return nil, err
		}
	}
	if slices.Contains(c.workloads, "cp") || slices.Contains(c.workloads, "rsync") {
		if files, err = newTree(work); err != nil {
			return nil, err
		}
	}
	var first *tree
	if slices.Contains(c.workloads, "first") {
		logf("writing %d files of 16 KiB", firstDirs*firstFilesPerDir)
		if first, err = newFirstTree(work); err != nil {
			return nil, err
		}
	}
	var scale []*tree
	if slices.Contains(c.workloads, "scale") {
		logf("writing %d and %d files of 4 KiB", scaleSmall, scaleBig)
		if scale, err = newScaleTrees(work); err != nil {
			return nil, err
		}
	}
	if slices.Contains(c.workloads, "backup") {
		logf("writing %s of 8 MiB files", formatSize(c.size))
		if backup, err = newBackupTree(work, c.size); err != nil {
			return nil, err
		}
	}
	for _, n := range workloadNames {
		switch {
		case !slices.Contains(c.workloads, n):
		case n == "read":
			out = append(out, big)
		case n == "random":
			out = append(out, newRandomRead(big))
		case n == "write":
			out = append(out, &bigWrite{src: big})
		case n == "cp":
			in := &copyIn{tree: files}
			out = append(out, in, &copyOut{in: in, work: work})
		case n == "rsync":
			out = append(out, &rsyncNoop{tree: files})
		case n == "ls":
			out = append(out, newListLong())
		case n == "find":
			out = append(out, newFindTree())
		case n == "first":
			out = append(out, &firstBackup{tree: first})
		case n == "scale":
			for _, t := range scale {
				out = append(out, &copyIn{tree: t})
			}
		case n == "backup":
			out = append(out, &copyIn{tree: backup})
		case n == "nightly":
			out = append(out, nightlyWorkloads(c.nightlyFiles, c.nightlyWalks)...)
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
