package main

import (
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/ssecfs/ssecfs/cache"
	"github.com/ssecfs/ssecfs/fs"
	"github.com/ssecfs/ssecfs/metrics"
	"github.com/ssecfs/ssecfs/stage"
	"github.com/ssecfs/ssecfs/store"
)

// monitor gathers one mount's state for `ssecfs status`, systemd's STATUS=
// line and the metrics, from the parts' own counts: one source for all
// three.
type monitor struct {
	c        *mountConfig
	fsys     *fs.FS
	mgr      *stage.Manager // nil: read-only
	blocks   *cache.Cache
	link     *store.Link
	reqs     *metrics.Requests
	rate     *metrics.Rate // of bytes handed to uploads
	journal  string
	endpoint string
	started  time.Time
}

// rateWindow is how far back the upload rate looks: long enough to smooth
// a big file's parts, short enough to show a stall within a minute.
const rateWindow = 30 * time.Second

// sample feeds the upload rate every 2 s until stop is closed.
func (m *monitor) sample(stop <-chan struct{}) {
	if m.mgr == nil {
		return
	}
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		m.rate.Add(time.Now(), m.mgr.Progress())
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}

func (m *monitor) snapshot() metrics.Snapshot {
	s := metrics.Snapshot{Cache: m.blocks.Stats(), Plaintext: m.fsys.PlaintextSeen(), UploadRate: m.rate.PerSecond()}
	s.OfflineSince, s.OfflineError = m.link.Offline()
	s.Read, s.Written = m.fsys.IO()
	if m.mgr != nil {
		st := m.mgr.Stats()
		s.Stage = &st
	}
	return s
}

// status is the mount's reply to `ssecfs status` (status.go), with every
// waiting file named.
func (m *monitor) status() reply {
	snap := m.snapshot()
	c := m.c
	r := reply{
		Mountpoint: c.mountpoint, Target: c.bucket + "/" + c.prefix, Endpoint: m.endpoint,
		PID: os.Getpid(), MountedAt: m.started.Format(time.RFC3339), ReadOnly: m.mgr == nil, Log: c.logFile,
		Online: snap.OfflineSince.IsZero(), OK: true, Plaintext: snap.Plaintext,
		Journal: journal{Dir: m.journal},
		Cache: cacheUse{MemoryBytes: snap.Cache.Bytes, MemoryLimit: snap.Cache.Limit, DiskBytes: snap.Cache.DiskBytes,
			DiskLimit: snap.Cache.DiskLimit, Hits: snap.Cache.Hits, Misses: snap.Cache.Misses,
			DiskHits: snap.Cache.DiskHits, FetchedBytes: snap.Cache.FetchedBytes},
		IO:      ioBytes{Read: snap.Read, Written: snap.Written},
		Pending: []pendingFile{},
	}
	r.Requests.Total, r.Requests.Errors, r.Requests.Retries = m.reqs.Totals()
	if !snap.OfflineSince.IsZero() {
		r.OfflineSince = snap.OfflineSince.Format(time.RFC3339)
		if snap.OfflineError != nil {
			r.OfflineError = snap.OfflineError.Error()
		}
	}
	if m.mgr == nil {
		return r
	}
	st := snap.Stage
	r.Waiting = waiting{Files: st.Files, Bytes: st.Bytes, Failed: st.Failed, Rate: snap.UploadRate}
	if st.Files == 0 {
		zero := 0.0
		r.Waiting.TimeLeft = &zero
	} else if snap.UploadRate > 0 {
		// The bytes waiting at the recent rate: a bound from above, as
		// the uploads under way have sent part of them already.
		left := float64(st.Bytes) / snap.UploadRate
		r.Waiting.TimeLeft = &left
	}
	r.Uploads = uploads{Done: st.Uploaded, Bytes: st.UploadedBytes, Retries: st.Retries, GaveUp: st.GaveUp}
	r.Journal.Bytes, r.Journal.Limit = st.JournalBytes, st.JournalCap
	if err := m.mgr.Full(); err != nil {
		r.Journal.Full = err.Error()
	}
	if since, err := m.mgr.Unreachable(); !since.IsZero() {
		within := c.backoffMax
		if within <= 0 {
			within = stage.DefaultRetryCap
		}
		r.UnreachableSince, r.RetryWithin = since.Format(time.RFC3339), within.String()
		if err != nil {
			r.NetError = err.Error()
		}
	}
	for _, p := range m.mgr.Pending() {
		r.Pending = append(r.Pending, pendingFile{Key: p.Key, Size: p.Size, Failed: p.Failed})
	}
	return r
}

// answerControl sets what the control socket answers to status and sync.
func (m *monitor) answerControl(ctl *controlServer, log *slog.Logger) {
	ctl.status = m.status
	ctl.sync = func(rel string) reply {
		r := syncUnder(m.mgr, m.c.prefix, rel)
		r.Mountpoint, r.Target, r.Journal.Dir = m.c.mountpoint, m.c.bucket+"/"+m.c.prefix, m.journal
		if n := len(r.Pending); n > 0 {
			log.Error("sync: files could not be uploaded", "path", rel, "failed", n)
		} else {
			log.Info("sync: uploaded", "path", rel, "files", r.Synced, "bytes", r.SyncedBytes)
		}
		return r
	}
}

// statusLine is systemd's STATUS=: where, what waits, whether offline.
func (m *monitor) statusLine(where string) string {
	line := "Mounted " + where
	snap := m.snapshot()
	if st := snap.Stage; st != nil && st.Files > 0 {
		line += fmt.Sprintf("; %d files (%s) waiting for upload", st.Files, human(st.Bytes))
	}
	if !snap.OfflineSince.IsZero() {
		line += "; offline since " + snap.OfflineSince.Format(time.RFC3339)
	}
	return line
}

// tellStatus keeps systemd's STATUS= line current, every 10 s while it
// changes, until the function it returns is called.
func (m *monitor) tellStatus(sd *notifier, where string) func() {
	if sd == nil {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(10 * time.Second)
		defer t.Stop()
		last := ""
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			if line := m.statusLine(where); line != last {
				sd.status(line)
				last = line
			}
		}
	}()
	return func() { close(done) }
}
