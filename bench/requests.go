package main

import (
	"bufio"
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Requests are counted by the servers themselves, so that every tool is
// counted the same way and the count costs the tool nothing: MinIO's
// Prometheus metrics (minio.sh serves them without a token) give each S3
// call by name; Ceph RGW's performance counters (its admin socket) give
// the total and the object GETs and PUTs. A snapshot is taken when a
// run's timer starts and when it stops; the difference is the run's.
// Nothing else talks to the server meanwhile: the bench's own checks come
// after the timer.

// counts is requests by kind ("GET", "HEAD", "PUT", "LIST", ...) plus
// "total".
type counts map[string]int64

// reqCounter snapshots a server's request counters.
type reqCounter interface {
	snapshot(ctx context.Context) (counts, error)
}

// newReqCounter returns the counter of a server, reached directly (not
// through the latency proxy, whose delay would be counted in the run).
func newReqCounter(srv *Server) (reqCounter, error) {
	switch srv.Name {
	case "minio":
		pem, err := os.ReadFile(srv.CA)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		return &minioCounter{url: srv.Endpoint + "/minio/metrics/v3/api/requests",
			c: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}}, nil
	case "rgw":
		return rgwCounter{asok: filepath.Join(stateDir(), "rgw", "run", "client.rgw.a.asok")}, nil
	}
	return nil, fmt.Errorf("no request counter for %s", srv.Name)
}

// sub is after minus before, kinds that did not change left out.
func (after counts) sub(before counts) counts {
	d := counts{}
	for k, v := range after {
		if n := v - before[k]; n != 0 {
			d[k] = n
		}
	}
	return d
}

type minioCounter struct {
	url string
	c   *http.Client
}

// The v3 metrics are counted as requests end; v2's are cached for seconds.
var minioReqRe = regexp.MustCompile(`^minio_api_requests_total\{name="([A-Za-z0-9]+)".*type="s3".*\} ([0-9.e+]+)$`)

// minioKinds names MinIO's API labels as the report does; others keep
// their own name.
var minioKinds = map[string]string{
	"GetObject": "GET", "HeadObject": "HEAD", "PutObject": "PUT", "ListObjectsV2": "LIST", "ListObjectsV1": "LIST",
	"PutObjectPart": "PART", "NewMultipartUpload": "CREATE", "CompleteMultipartUpload": "COMPLETE",
	"CopyObject": "COPY", "DeleteObject": "DELETE", "DeleteMultipleObjects": "DELETE",
}

func (m *minioCounter) snapshot(ctx context.Context) (counts, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := m.c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("MinIO metrics: %s (is MinIO started by minio.sh with MINIO_PROMETHEUS_AUTH_TYPE=public?)", resp.Status)
	}
	c := counts{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		mm := minioReqRe.FindStringSubmatch(sc.Text())
		if mm == nil {
			continue
		}
		v, err := strconv.ParseFloat(mm[2], 64)
		if err != nil {
			continue
		}
		kind := minioKinds[mm[1]]
		if kind == "" {
			kind = mm[1]
		}
		c[kind] += int64(v)
		c["total"] += int64(v)
	}
	return c, sc.Err()
}

type rgwCounter struct{ asok string }

// snapshot reads radosgw's "rgw" performance counters: req (every
// request), get and put (object GETs and PUTs).
func (r rgwCounter) snapshot(ctx context.Context) (counts, error) {
	out, err := exec.CommandContext(ctx, "ceph", "--admin-daemon", r.asok, "perf", "dump", "rgw").Output()
	if err != nil {
		return nil, fmt.Errorf("ceph --admin-daemon %s perf dump: %w", r.asok, err)
	}
	var dump struct {
		RGW map[string]json.RawMessage `json:"rgw"`
	}
	if err := json.Unmarshal(out, &dump); err != nil {
		return nil, err
	}
	c := counts{}
	for k, kind := range map[string]string{"req": "total", "get": "GET", "put": "PUT"} {
		var v int64
		if err := json.Unmarshal(dump.RGW[k], &v); err != nil {
			return nil, fmt.Errorf("rgw perf counter %q: %w", k, err)
		}
		c[kind] = v
	}
	return c, nil
}

// String is the total and the largest kinds: "1,012 (HEAD 1,000, LIST 11, GET 1)".
func (c counts) String() string {
	if len(c) == 0 {
		return "-"
	}
	var kinds []string
	for k := range c {
		if k != "total" {
			kinds = append(kinds, k)
		}
	}
	// Most first; ties by name, so that the text is stable.
	slices.SortFunc(kinds, func(a, b string) int {
		return cmp.Or(cmp.Compare(c[b], c[a]), cmp.Compare(a, b))
	})
	var parts []string
	for _, k := range kinds[:min(3, len(kinds))] {
		parts = append(parts, k+" "+thousands(int(c[k])))
	}
	s := thousands(int(c["total"]))
	if len(parts) > 0 {
		s += " (" + strings.Join(parts, ", ") + ")"
	}
	return s
}

// stopwatch times one run and counts the requests the server answered
// meanwhile. The runner puts one in the run's context; a workload calls
// start where its timed part begins and stop where it ends. The snapshots
// are taken outside the timed part.
type stopwatch struct {
	counter  reqCounter // nil: time only
	t0       time.Time
	before   counts
	requests counts // after stop; nil if not counted
	err      error
}

type watchKey struct{}

func withWatch(ctx context.Context, sw *stopwatch) context.Context {
	return context.WithValue(ctx, watchKey{}, sw)
}

// watchOf is the run's stopwatch, or one that only times.
func watchOf(ctx context.Context) *stopwatch {
	if sw, ok := ctx.Value(watchKey{}).(*stopwatch); ok {
		return sw
	}
	return &stopwatch{}
}

func (sw *stopwatch) start(ctx context.Context) {
	if sw.counter != nil {
		sw.before, sw.err = sw.counter.snapshot(ctx)
	}
	sw.t0 = time.Now()
}

func (sw *stopwatch) stop(ctx context.Context) time.Duration {
	d := time.Since(sw.t0)
	if sw.counter != nil && sw.err == nil {
		after, err := sw.counter.snapshot(ctx)
		if err != nil {
			sw.err = err
		} else {
			sw.requests = after.sub(sw.before)
		}
	}
	return d
}
