package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ssecfs/ssecfs/cache"
	"github.com/ssecfs/ssecfs/stage"
)

// Snapshot is a mount's state at one moment: what the gauges show and the
// counters' values. The daemon builds it for both the metrics and
// `ssecfs status`.
type Snapshot struct {
	OfflineSince time.Time    // zero: online
	OfflineError error        // the last failure while offline
	Stage        *stage.Stats // nil: a read-only mount
	Cache        cache.Stats
	Read         int64   // bytes programs read from the mount
	Written      int64   // bytes programs wrote to it
	Plaintext    int64   // objects stored without SSE-C met
	UploadRate   float64 // bytes per second handed to uploads, lately
}

// Collector exports a mount's Snapshot and Requests, read at each scrape.
type Collector struct {
	snap func() Snapshot
	reqs *Requests
}

// NewCollector reads snap and reqs at each scrape.
func NewCollector(snap func() Snapshot, reqs *Requests) *Collector {
	return &Collector{snap: snap, reqs: reqs}
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("ssecfs_"+name, help, labels, nil)
}

var (
	dOnline       = desc("online", "1 while the server answers, 0 while the mount is offline.")
	dOfflineSince = desc("offline_since_seconds", "When the mount went offline (Unix time); 0 while online.")
	dQueueFiles   = desc("upload_queue_files", "Files waiting for upload, failed ones included.")
	dQueueBytes   = desc("upload_queue_bytes", "Bytes of the files waiting for upload.")
	dQueueFailed  = desc("upload_failed_files", "Files waiting whose last upload failed.")
	dUploads      = desc("uploads_total", "Files uploaded since the mount.")
	dUpBytes      = desc("uploaded_bytes_total", "Bytes of the files uploaded since the mount.")
	dUpFailures   = desc("upload_failures_total", "Uploads that failed for good (attempts spent on an error that does not heal by itself).")
	dUpRetries    = desc("upload_retries_total", "Uploads tried again after a failure.")
	dUpRate       = desc("upload_rate_bytes_per_second", "Bytes handed to uploads per second, over the last 30 seconds.")
	dJournal      = desc("journal_bytes", "Disk used by the journal of files waiting for upload.")
	dJournalCap   = desc("journal_limit_bytes", "The journal's bound (--journal-size); 0: none.")
	dRequests     = desc("requests_total", "Requests to the server, by operation and status (none: no answer).", "op", "status")
	dLatency      = desc("request_duration_seconds", "Time until the server's answer (or the failure), by operation and status.", "op", "status")
	dReqRetries   = desc("request_retries_total", "Requests sent again after a try that failed.")
	dCacheHits    = desc("cache_hits_total", "Reads of a block found in memory.")
	dCacheMisses  = desc("cache_misses_total", "Reads of a block that had to wait for the disk cache or the server.")
	dCacheDisk    = desc("cache_disk_hits_total", "Blocks read back from the disk cache instead of the server.")
	dFetched      = desc("fetched_bytes_total", "Bytes of blocks fetched from the server, read-ahead included.")
	dCacheBytes   = desc("cache_bytes", "Bytes held by the cache, by tier (memory, disk).", "tier")
	dCacheLimit   = desc("cache_limit_bytes", "The cache's bound, by tier (memory, disk).", "tier")
	dRead         = desc("read_bytes_total", "Bytes programs read from the mount.")
	dWritten      = desc("written_bytes_total", "Bytes programs wrote to the mount.")
	dPlaintext    = desc("plaintext_objects_seen_total", "Objects stored without SSE-C met in the bucket.")
)

// Describe sends every metric's description.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{dOnline, dOfflineSince, dQueueFiles, dQueueBytes, dQueueFailed,
		dUploads, dUpBytes, dUpFailures, dUpRetries, dUpRate, dJournal, dJournalCap, dRequests, dLatency,
		dReqRetries, dCacheHits, dCacheMisses, dCacheDisk, dFetched, dCacheBytes, dCacheLimit, dRead, dWritten,
		dPlaintext} {
		ch <- d
	}
}

// Collect reads the mount's state now.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s := c.snap()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v int64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	online, since := 1.0, 0.0
	if !s.OfflineSince.IsZero() {
		online, since = 0, float64(s.OfflineSince.Unix())
	}
	gauge(dOnline, online)
	gauge(dOfflineSince, since)
	if st := s.Stage; st != nil {
		gauge(dQueueFiles, float64(st.Files))
		gauge(dQueueBytes, float64(st.Bytes))
		gauge(dQueueFailed, float64(st.Failed))
		counter(dUploads, st.Uploaded)
		counter(dUpBytes, st.UploadedBytes)
		counter(dUpFailures, st.GaveUp)
		counter(dUpRetries, st.Retries)
		gauge(dUpRate, s.UploadRate)
		gauge(dJournal, float64(st.JournalBytes))
		gauge(dJournalCap, float64(st.JournalCap))
	}
	for _, r := range c.reqs.Series() {
		ch <- prometheus.MustNewConstMetric(dRequests, prometheus.CounterValue, float64(r.Count), r.Op, r.Status)
		ch <- prometheus.MustNewConstHistogram(dLatency, r.Count, r.Sum, r.Buckets, r.Op, r.Status)
	}
	_, _, retries := c.reqs.Totals()
	counter(dReqRetries, retries)
	counter(dCacheHits, s.Cache.Hits)
	counter(dCacheMisses, s.Cache.Misses)
	counter(dCacheDisk, s.Cache.DiskHits)
	counter(dFetched, s.Cache.FetchedBytes)
	gauge(dCacheBytes, float64(s.Cache.Bytes), "memory")
	gauge(dCacheBytes, float64(s.Cache.DiskBytes), "disk")
	gauge(dCacheLimit, float64(s.Cache.Limit), "memory")
	gauge(dCacheLimit, float64(s.Cache.DiskLimit), "disk")
	counter(dRead, s.Read)
	counter(dWritten, s.Written)
	counter(dPlaintext, s.Plaintext)
}
