package stage

import "sync/atomic"

// counts are what the manager did since it opened, for Stats.
type counts struct {
	uploaded, uploadedBytes atomic.Int64
	retries, gaveUp         atomic.Int64
}

// Stats is what the manager holds and has done, for `ssecfs status` and
// the metrics: totals only, no names (Pending lists them).
type Stats struct {
	Files, Bytes int64 // waiting for upload, failed ones included
	Failed       int64 // of those, the ones whose upload failed
	// JournalBytes is the journal's disk in use, JournalCap its bound (0:
	// none).
	JournalBytes, JournalCap int64
	Uploaded, UploadedBytes  int64 // files uploaded since the mount
	Retries                  int64 // uploads tried again after a failure
	GaveUp                   int64 // uploads that failed for good
	Sent                     int64 // bytes handed to uploads (Progress)
}

// Stats sums the waiting files without listing them.
func (m *Manager) Stats() Stats {
	m.mu.Lock()
	s := Stats{JournalBytes: m.used, JournalCap: m.cfg.Cap}
	m.mu.Unlock()
	m.eachWaiting(func(e *Entry) {
		s.Files++
		s.Bytes += e.size
		if e.failed != nil {
			s.Failed++
		}
	})
	s.Uploaded, s.UploadedBytes = m.counts.uploaded.Load(), m.counts.uploadedBytes.Load()
	s.Retries, s.GaveUp = m.counts.retries.Load(), m.counts.gaveUp.Load()
	s.Sent = m.sent.Load()
	return s
}
