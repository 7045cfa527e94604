package main

import (
	"cmp"
	"context"
	"debug/buildinfo"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Record is one run of one tool, as kept in latest.json.
type Record struct {
	Server   string   `json:"server"`
	Workload string   `json:"workload"`
	Tool     string   `json:"tool"`
	Run      int      `json:"run"`
	Status   Status   `json:"status"`
	Seconds  float64  `json:"seconds,omitempty"`
	PeakRSS  int64    `json:"peak_rss_bytes,omitempty"`
	Changes  int      `json:"changes,omitempty"`  // NOT-NOOP: lines of changes rsync reported
	Requests counts   `json:"requests,omitempty"` // answered by the server during the timed part
	Error    string   `json:"error,omitempty"`
	Notes    []string `json:"notes,omitempty"`
}

// Summary is the progress line of a run.
func (r Record) Summary(bytes int64, files int) string {
	if r.Status != OK {
		return string(r.Status) + ": " + r.Error
	}
	return fmt.Sprintf("%.2f s (%s), peak RSS %s", r.Seconds, rate(bytes, files, r.Seconds), mib(r.PeakRSS))
}

// Report gathers the records and what is needed to reproduce them.
type Report struct {
	Config   *config           `json:"-"`
	Started  time.Time         `json:"started"`
	Command  []string          `json:"command"`
	Runs     int               `json:"runs"`
	Machine  string            `json:"machine"`
	Load     string            `json:"load_average"`
	Versions map[string]string `json:"versions"`
	Servers  map[string]string `json:"servers"`
	Bytes    map[string]int64  `json:"workload_bytes"`
	Files    map[string]int    `json:"workload_files"`
	Records  []Record          `json:"records"`

	tools, workloads, servers []string // in order of first appearance
}

func (rep *Report) Add(r Record) {
	rep.Records = append(rep.Records, r)
	for _, p := range []struct {
		list *[]string
		v    string
	}{{&rep.tools, r.Tool}, {&rep.workloads, r.Workload}, {&rep.servers, r.Server}} {
		if !slices.Contains(*p.list, p.v) {
			*p.list = append(*p.list, p.v)
		}
	}
}

func (rep *Report) AllOK() bool {
	for _, r := range rep.Records {
		if (r.Status != OK && r.Status != NotApplicable) || len(r.Notes) > 0 {
			return false
		}
	}
	return true
}

// collectMeta records the machine and the servers' versions.
func (rep *Report) collectMeta(ctx context.Context, bin string) {
	var u unix.Utsname
	_ = unix.Uname(&u)
	rep.Machine = fmt.Sprintf("%d CPUs (%s), %s RAM, Linux %s", runtime.NumCPU(), cpuModel(),
		memTotal(), unix.ByteSliceToString(u.Release[:]))
	rep.Servers = map[string]string{
		"minio": minioVersion(),
		"rgw":   firstLine(ctx, "radosgw", "--version"),
	}
	rep.Versions["go"] = runtime.Version()
}

// minioVersion is the module version MinIO was built from: go install
// builds say only "DEVELOPMENT.GOGET" in minio --version.
func minioVersion() string {
	bi, err := buildinfo.ReadFile(filepath.Join(stateDir(), "bin", "minio"))
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	return "MinIO " + bi.Main.Version
}

func cpuModel() string {
	data, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

func memTotal() string {
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) != nil {
		return "?"
	}
	return fmt.Sprintf("%.1f GiB", float64(si.Totalram)*float64(si.Unit)/(1<<30))
}

// cell is what one tool did for one workload on one server.
type cell struct {
	ok             []float64 // seconds of the runs that passed
	bad            *Record   // the first run that did not
	runs           int
	peakRSS        int64
	median, lo, hi float64
	requests       counts // of the median run (the faster of the middle two)
}

func (rep *Report) cell(workload, server, tool string) *cell {
	c := &cell{}
	var okRuns []*Record
	for i := range rep.Records {
		r := &rep.Records[i]
		if r.Workload != workload || r.Server != server || r.Tool != tool {
			continue
		}
		c.runs++
		c.peakRSS = max(c.peakRSS, r.PeakRSS)
		if r.Status == OK {
			c.ok = append(c.ok, r.Seconds)
			okRuns = append(okRuns, r)
		} else if c.bad == nil {
			c.bad = r
		}
	}
	if len(c.ok) > 0 {
		slices.Sort(c.ok)
		n := len(c.ok)
		c.median = (c.ok[(n-1)/2] + c.ok[n/2]) / 2
		c.lo, c.hi = c.ok[0], c.ok[n-1]
		slices.SortFunc(okRuns, func(a, b *Record) int { return cmp.Compare(a.Seconds, b.Seconds) })
		c.requests = okRuns[(n-1)/2].Requests
	}
	return c
}

// valid says whether the cell has a time to show: every run passed.
func (c *cell) valid() bool { return c.bad == nil && len(c.ok) > 0 }

// rate is MB/s, or files/s for a workload of many files.
func rate(bytes int64, files int, seconds float64) string {
	switch {
	case seconds <= 0:
		return "-"
	case files > 1:
		return fmt.Sprintf("%.0f files/s", float64(files)/seconds)
	}
	return fmt.Sprintf("%.0f MB/s", float64(bytes)/seconds/1e6)
}

func mib(b int64) string {
	if b <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20))
}

// Markdown is the report: one table of times, one of memory, failures,
// and the setup.
func (rep *Report) Markdown() string {
	var b strings.Builder
	c := rep.Config
	fmt.Fprintf(&b, "# ssecfs benchmark, %s\n\n", rep.Started.Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "Median of %d cold run(s) per cell, min–max in brackets; MB/s = 10^6 bytes/s. "+
		"`vs ssecfs` is the tool's median time divided by ssecfs's: above 1 the tool is slower than ssecfs, below 1 faster. "+
		"Writes are timed until the data is in the bucket (sync and unmount included), then checked: "+
		"SSE-C (a HEAD without the key must fail), full size, the same bytes.\n\n", c.runs)
	switch {
	case c.uplink > 0:
		// Writes are what the cap slows: say so, and that it is one pipe
		// for all the parallel uploads, not a cap per connection.
		delay := ""
		if c.latency > 0 {
			delay = fmt.Sprintf("adding %s each way (%s per round trip) and ", c.latency, 2*c.latency)
		}
		fmt.Fprintf(&b, "Every client reaches the server through a pipelined loopback proxy %scapping the client→server direction "+
			"at %s in all, as a home uplink would: parallel uploads share the cap, they do not each get it. "+
			"The server→client direction is not capped.\n\n", delay, formatRate(c.uplink))
	case c.latency > 0:
		fmt.Fprintf(&b, "Every client reaches the server through a pipelined loopback proxy adding %s each way "+
			"(%s per round trip), as a distant server would; a stream keeps its throughput.\n\n", c.latency, 2*c.latency)
	}

	ref := "ssecfs"
	head := []string{"workload", "server"}
	for _, t := range rep.tools {
		head = append(head, t)
		if t != ref {
			head = append(head, "vs "+ref)
		}
	}
	row(&b, head)
	row(&b, slices.Repeat([]string{"---"}, len(head)))
	var failures []*Record
	for _, w := range rep.workloads {
		for _, s := range rep.servers {
			line := []string{w, s}
			base := rep.cell(w, s, ref)
			for _, t := range rep.tools {
				x := rep.cell(w, s, t)
				line = append(line, x.text(rep.Bytes[w], rep.Files[w], c.timeout))
				if x.bad != nil && x.bad.Status != NotApplicable {
					failures = append(failures, x.bad)
				}
				if t == ref {
					continue
				}
				ratio := "-"
				if x.valid() && base.valid() {
					ratio = fmt.Sprintf("%.2f", x.median/base.median)
				}
				line = append(line, ratio)
			}
			row(&b, line)
		}
	}

	rep.toolTable(&b, "Peak resident memory (VmHWM, highest of the runs) of the process doing the work: "+
		"the FUSE daemon over the whole mount, uploads at unmount included; for aws s3 cp, the aws process.",
		func(x *cell) string { return mib(x.peakRSS) })
	rep.toolTable(&b, "Requests the server answered during the timed part of the median run, as the server counts them "+
		"(MinIO: every S3 call, by name; RGW: the total, of which object GETs and PUTs), the largest kinds in brackets.",
		func(x *cell) string {
			if x.valid() {
				return x.requests.String()
			}
			return "-"
		})

	if len(failures) > 0 {
		b.WriteString("\nFailures (a tool is not run again for a workload and server after its first failure):\n\n")
		for _, r := range failures {
			when := fmt.Sprintf("run %d", r.Run)
			if r.Run == 0 {
				when = "before the runs"
			}
			what := string(r.Status)
			if r.Status == NotNoop {
				what = fmt.Sprintf("not a no-op, %d lines of changes in %.2f s", r.Changes, r.Seconds)
			}
			fmt.Fprintf(&b, "- %s, %s, %s, %s: %s: %s\n", r.Tool, r.Workload, r.Server, when, what, oneLine(r.Error))
		}
	}
	var notes []string
	for _, r := range rep.Records {
		for _, n := range r.Notes {
			notes = append(notes, fmt.Sprintf("- %s, %s, run %d: %s", r.Tool, r.Server, r.Run, oneLine(n)))
		}
	}
	if len(notes) > 0 {
		b.WriteString("\nUnmount problems:\n\n" + strings.Join(notes, "\n") + "\n")
	}

	b.WriteString("\nSetup:\n\n")
	fmt.Fprintf(&b, "- machine: %s\n", rep.Machine)
	fmt.Fprintf(&b, "- load average when the run started: %s (other work on the machine skews the times)\n", rep.Load)
	fmt.Fprintf(&b, "- command: `%s`\n", strings.TrimSpace("go run ./bench "+strings.Join(rep.Command, " ")))
	fmt.Fprintf(&b, "- runs: %d per cell, limit %s per run; cold: fresh mount, then sync and drop_caches, then a wait until the CPUs are 90%% idle (at most 20 s), before every run\n",
		c.runs, c.timeout)
	var vs []string
	for _, t := range append(slices.Clone(rep.tools), "go") {
		vs = append(vs, fmt.Sprintf("%s %s", t, rep.Versions[t]))
	}
	fmt.Fprintf(&b, "- tools: %s\n", strings.Join(vs, "; "))
	for _, s := range rep.servers {
		fmt.Fprintf(&b, "- %s: %s\n", s, rep.Servers[s])
	}
	return b.String()
}

// toolTable writes a caption and a table of one entry per workload,
// server and tool.
func (rep *Report) toolTable(b *strings.Builder, caption string, entry func(*cell) string) {
	b.WriteString("\n" + caption + "\n\n")
	row(b, append([]string{"workload", "server"}, rep.tools...))
	row(b, slices.Repeat([]string{"---"}, len(rep.tools)+2))
	for _, w := range rep.workloads {
		for _, s := range rep.servers {
			line := []string{w, s}
			for _, t := range rep.tools {
				line = append(line, entry(rep.cell(w, s, t)))
			}
			row(b, line)
		}
	}
}

// text is the cell's entry in the time table.
func (c *cell) text(bytes int64, files int, limit time.Duration) string {
	switch {
	case c.runs == 0:
		return "-"
	case c.bad != nil && c.bad.Status == Timeout:
		return fmt.Sprintf("TIMEOUT (>%s)", limit)
	case c.bad != nil && c.bad.Status == NotNoop:
		return fmt.Sprintf("not a no-op (%d)", c.bad.Changes)
	case c.bad != nil:
		return string(c.bad.Status)
	}
	s := fmt.Sprintf("%.2f s (%s)", c.median, rate(bytes, files, c.median))
	if len(c.ok) > 1 {
		s += fmt.Sprintf(" [%.2f–%.2f]", c.lo, c.hi)
	}
	return s
}

func row(b *strings.Builder, cells []string) {
	b.WriteString("| " + strings.Join(cells, " | ") + " |\n")
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 400 {
		s = s[:400] + "..."
	}
	return s
}

// Write saves the markdown and the raw records (for later comparisons
// and charts) in dir.
func (rep *Report) Write(dir, md string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	name := rep.Config.resultName()
	if err := os.WriteFile(filepath.Join(dir, name+".md"), []byte(md), 0o644); err != nil {
		return err
	}
	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, name+".json"), append(js, '\n'), 0o644); err != nil {
		return err
	}
	return rep.chart(filepath.Join(dir, name+".png"))
}

// chart draws the time table as bars: each tool's median time divided by
// ssecfs's, per workload and server.
func (rep *Report) chart(path string) error {
	var rows []chartRow
	for _, w := range rep.workloads {
		for _, s := range rep.servers {
			r := chartRow{Label: w + " · " + s, Times: map[string]float64{}, Status: map[string]string{}}
			for _, t := range rep.tools {
				switch x := rep.cell(w, s, t); {
				case x.valid():
					r.Times[t] = x.median
				case x.bad != nil && x.bad.Status == NotNoop:
					r.Status[t] = "not a no-op"
				case x.bad != nil:
					r.Status[t] = string(x.bad.Status)
				}
			}
			rows = append(rows, r)
		}
	}
	title := fmt.Sprintf("ssecfs benchmark: median of %d cold run(s), %s", rep.Runs, rep.Started.Format("2006-01-02"))
	if c := rep.Config; c.latency > 0 || c.uplink > 0 {
		title += ", " + c.network()
	}
	return writeChart(path, title, rep.tools, rows)
}

// network says in a few words what the proxy plays, e.g. "20ms added
// each way, uplink capped at 20 MB/s"; empty without a proxy.
func (c *config) network() string {
	var parts []string
	if c.latency > 0 {
		parts = append(parts, fmt.Sprintf("%s added each way", c.latency))
	}
	if c.uplink > 0 {
		parts = append(parts, "uplink capped at "+formatRate(c.uplink))
	}
	return strings.Join(parts, ", ")
}
