package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// statusSchema is the version of `ssecfs status --json`
// (docs/status.schema.json). Fields are only ever added within a version;
// a field removed or changing meaning makes a new one.
const statusSchema = 1

// reply is a daemon's answer on the control socket: one mount's status,
// and the outcome of a sync or an unmount. In `ssecfs status --json` it is
// one element of "mounts".
type reply struct {
	Mountpoint string `json:"mountpoint"`
	Target     string `json:"target"` // BUCKET/PREFIX
	Endpoint   string `json:"endpoint"`
	PID        int    `json:"pid"`
	MountedAt  string `json:"mounted_at"` // RFC 3339
	ReadOnly   bool   `json:"read_only"`
	Log        string `json:"log,omitempty"` // the log file; absent: standard error
	// Online is false while the server does not answer at all; then
	// OfflineSince (RFC 3339) and OfflineError say since when and why.
	Online       bool   `json:"online"`
	OfflineSince string `json:"offline_since,omitempty"`
	OfflineError string `json:"offline_error,omitempty"`
	// UnreachableSince is when uploads began to fail on the network (RFC
	// 3339), until one succeeds; NetError is the last such failure, and
	// RetryWithin the longest wait until the next try.
	UnreachableSince string   `json:"unreachable_since,omitempty"`
	NetError         string   `json:"net_error,omitempty"`
	RetryWithin      string   `json:"retry_within,omitempty"`
	Waiting          waiting  `json:"waiting"`
	Uploads          uploads  `json:"uploads"`
	Journal          journal  `json:"journal"`
	Cache            cacheUse `json:"cache"`
	Requests         requests `json:"requests"`
	IO               ioBytes  `json:"io"`
	// Plaintext counts the objects stored without SSE-C the mount met.
	Plaintext int64 `json:"plaintext_objects"`
	// Pending lists every file waiting for upload (status) or, in a sync's
	// answer, those it could not upload.
	Pending []pendingFile `json:"pending"`

	// The outcome of a sync or an unmount.
	OK          bool   `json:"ok,omitempty"`
	Error       string `json:"error,omitempty"`
	Synced      int    `json:"synced,omitempty"`
	SyncedBytes int64  `json:"synced_bytes,omitempty"`
}

type pendingFile struct {
	Key    string `json:"key"`
	Size   int64  `json:"size"`
	Failed string `json:"failed,omitempty"` // why its last upload failed
}

type waiting struct {
	Files  int64 `json:"files"`
	Bytes  int64 `json:"bytes"`
	Failed int64 `json:"failed"` // of those, the files whose last upload failed
	// Rate is the bytes per second handed to uploads over the last 30 s;
	// TimeLeft the seconds until what waits is sent at that rate, absent
	// when nothing moves.
	Rate     float64  `json:"rate_bytes_per_second"`
	TimeLeft *float64 `json:"time_left_seconds,omitempty"`
}

type uploads struct {
	Done    int64 `json:"done"` // files uploaded since the mount
	Bytes   int64 `json:"bytes"`
	Retries int64 `json:"retries"`
	GaveUp  int64 `json:"failed_for_good"`
}

type journal struct {
	Dir   string `json:"dir,omitempty"` // absent on a read-only mount
	Bytes int64  `json:"bytes"`
	Limit int64  `json:"limit_bytes"` // 0: none
	// Full says why writers last got ENOSPC for want of room in the
	// journal, until room is made again.
	Full string `json:"full,omitempty"`
}

type cacheUse struct {
	MemoryBytes  int64 `json:"memory_bytes"`
	MemoryLimit  int64 `json:"memory_limit_bytes"`
	DiskBytes    int64 `json:"disk_bytes"`
	DiskLimit    int64 `json:"disk_limit_bytes"` // 0: no disk cache
	Hits         int64 `json:"hits"`
	Misses       int64 `json:"misses"`
	DiskHits     int64 `json:"disk_hits"`
	FetchedBytes int64 `json:"fetched_bytes"`
}

type requests struct {
	Total   int64 `json:"total"`
	Errors  int64 `json:"errors"`
	Retries int64 `json:"retries"`
}

type ioBytes struct {
	Read    int64 `json:"read_bytes"`
	Written int64 `json:"written_bytes"`
}

const statusUsage = `Usage: ssecfs status [--json] [MOUNTPOINT...]

Shows each mount of this user (or those named): online or offline, what
waits for upload and how fast it goes, failed uploads and why, cache and
journal use, requests and errors. --json prints the same as one JSON
document (schema in docs/status.schema.json).

Exit status: 0, or 1 if an upload failed, 2 if a mountpoint named has no
ssecfs daemon.

Options:
`

func runStatus(args []string) int {
	f := flag.NewFlagSet("status", flag.ContinueOnError)
	f.SetOutput(io.Discard)
	asJSON := f.Bool("json", false, "print JSON (docs/status.schema.json)")
	pos, err := parseInterleaved(f, args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Print(statusUsage)
		printFlags(os.Stdout, f)
		return 0
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "ssecfs status: %v (see ssecfs status --help)\n", err)
		return 2
	}
	var mounts []reply
	code := 0
	if len(pos) == 0 {
		mounts = allMounts()
	}
	for _, a := range pos {
		mp, err := filepath.Abs(a)
		if err == nil {
			var r reply
			if r, err = ask(mp, "status", 10*time.Second); err == nil {
				mounts = append(mounts, r)
				continue
			}
		}
		fmt.Fprintln(os.Stderr, "ssecfs status:", noDaemon(mp))
		code = 2
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if mounts == nil {
			mounts = []reply{}
		}
		enc.Encode(struct {
			Schema int     `json:"schema"`
			Mounts []reply `json:"mounts"`
		}{statusSchema, mounts})
	} else {
		if len(pos) == 0 && len(mounts) == 0 {
			fmt.Println("no ssecfs mounts")
		}
		for i, r := range mounts {
			if i > 0 {
				fmt.Println()
			}
			printStatus(os.Stdout, r)
		}
	}
	for _, r := range mounts {
		if r.Waiting.Failed > 0 && code == 0 {
			code = 1
		}
	}
	return code
}

// allMounts asks every control socket of this user, in its runtime folder,
// for its status. A socket another user owns is skipped (a root daemon's
// answers would not be ours to read), and so is one nobody answers on (a
// daemon that died).
func allMounts() []reply {
	dir := runtimeDir()
	names, _ := filepath.Glob(filepath.Join(dir, "*.sock"))
	var out []reply
	for _, n := range names {
		var st syscall.Stat_t
		if syscall.Lstat(n, &st) != nil || int(st.Uid) != os.Getuid() || st.Mode&syscall.S_IFMT != syscall.S_IFSOCK {
			continue
		}
		if r, err := sendTo(n, request{Op: "status"}, 10*time.Second); err == nil {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Mountpoint < out[j].Mountpoint })
	return out
}

// noDaemon says why no daemon answered for mp, in the user's terms.
func noDaemon(mp string) string {
	if mounted, err := isMounted(mp); err == nil && !mounted {
		return mp + " is not mounted"
	}
	return mp + " is mounted, but no ssecfs daemon of yours answers for it (another user's mount, or its daemon is gone: then run ssecfs umount " + mp + ")"
}

// shownWaiting is how many waiting files the text status names; the
// failed ones are all named.
const shownWaiting = 20

func printStatus(w io.Writer, r reply) {
	fmt.Fprintf(w, "%s: s3://%s at %s (pid %d, mounted %s)\n", r.Mountpoint, r.Target, r.Endpoint, r.PID, r.MountedAt)
	if r.Log != "" {
		fmt.Fprintf(w, "  log: %s\n", r.Log)
	}
	switch {
	case r.OfflineSince != "":
		// Offline: no answer at all. Stat and listings answer from what
		// the mount knew; changes to the bucket fail; uploads wait.
		fmt.Fprintf(w, "  offline since %s: the server does not answer (last error: %s); folders listed before still list, changes to the bucket fail, new files wait in the journal",
			r.OfflineSince, r.OfflineError)
		if r.RetryWithin != "" {
			fmt.Fprintf(w, ": uploads are tried again within %s, and at once when it answers", r.RetryWithin)
		}
		fmt.Fprintln(w)
	case r.UnreachableSince != "":
		fmt.Fprintf(w, "  server unreachable since %s: uploads are tried again within %s, and at once when it answers (last error: %s)\n",
			r.UnreachableSince, r.RetryWithin, r.NetError)
	default:
		fmt.Fprintln(w, "  online")
	}
	if !r.ReadOnly {
		line := fmt.Sprintf("  %s (%s) waiting for upload, %d failed", plural(int(r.Waiting.Files), "file"), human(r.Waiting.Bytes), r.Waiting.Failed)
		if r.Waiting.Files > 0 {
			line += progress(r.Waiting)
		}
		fmt.Fprintln(w, line)
		fmt.Fprintf(w, "  uploaded since the mount: %s (%s), %d retries, %d failed for good\n",
			plural(int(r.Uploads.Done), "file"), human(r.Uploads.Bytes), r.Uploads.Retries, r.Uploads.GaveUp)
		fmt.Fprintf(w, "  journal: %s, %s used", r.Journal.Dir, human(r.Journal.Bytes))
		if r.Journal.Limit > 0 {
			fmt.Fprintf(w, " of %s", human(r.Journal.Limit))
		}
		fmt.Fprintln(w)
		if r.Journal.Full != "" {
			fmt.Fprintf(w, "  journal full, writers refused: %s\n", r.Journal.Full)
		}
	}
	c := r.Cache
	fmt.Fprintf(w, "  cache: memory %s of %s", human(c.MemoryBytes), human(c.MemoryLimit))
	if c.DiskLimit > 0 {
		fmt.Fprintf(w, ", disk %s of %s", human(c.DiskBytes), human(c.DiskLimit))
	}
	if n := c.Hits + c.Misses; n > 0 {
		fmt.Fprintf(w, "; %d%% of block reads from memory", c.Hits*100/n)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "  requests: %d, %d errors, %d retries; programs read %s, wrote %s\n",
		r.Requests.Total, r.Requests.Errors, r.Requests.Retries, human(r.IO.Read), human(r.IO.Written))
	if r.Plaintext > 0 {
		fmt.Fprintf(w, "  %d objects stored without SSE-C met (anyone with write access to the bucket can make those; see the log)\n", r.Plaintext)
	}
	shown := 0
	for _, p := range r.Pending {
		if p.Failed == "" {
			if shown == shownWaiting {
				continue
			}
			shown++
		}
		line := fmt.Sprintf("    %s  %d bytes", p.Key, p.Size)
		if p.Failed != "" {
			line += "  FAILED: " + p.Failed
		}
		fmt.Fprintln(w, line)
	}
	if more := len(r.Pending) - int(r.Waiting.Failed) - shown; more > 0 {
		fmt.Fprintf(w, "    ... and %d more waiting (ssecfs status --json lists them all)\n", more)
	}
}

// progress is ", uploading at RATE, about TIME left", or what is known of it.
func progress(w waiting) string {
	if w.Rate <= 0 {
		return ""
	}
	s := fmt.Sprintf("; uploading at %s/s", human(int64(w.Rate)))
	if w.TimeLeft != nil {
		s += ", about " + (time.Duration(*w.TimeLeft) * time.Second).Round(time.Second).String() + " left"
	}
	return s
}

// human writes a byte count as people read it, in the binary units of
// the size options: 512 B, 3.4 MiB, 16 GiB.
func human(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n), 0
	for v >= unit && i < 5 {
		v /= unit
		i++
	}
	return strings.TrimSuffix(fmt.Sprintf("%.1f", v), ".0") + " " + string("KMGTP"[i-1]) + "iB"
}
