//go:build integration

package integration

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/ssecfs/ssecfs/store"
)

// statusSchema compiles docs/status.schema.json.
func statusSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	sch, err := c.Compile("../docs/status.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	return sch
}

// `ssecfs status --json` with no mountpoint lists every mount of the user,
// each as docs/status.schema.json says; the text form says the same.
func TestStatusJSONListsEveryMountAsItsSchemaSays(t *testing.T) {
	s := loadServer(t, "rgw")
	rw := s.mount(t, s.bucket(t), "--write-back", "1h")
	ro := s.mount(t, s.bucket(t), "--read-only")
	data := []byte("waiting for upload")
	if err := os.WriteFile(filepath.Join(rw.dir, "waits.txt"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	out, code := s.run(t, "status", "--json")
	if code != 0 {
		t.Fatalf("status --json (%d): %s", code, out)
	}
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(out))
	if err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if err := statusSchema(t).Validate(doc); err != nil {
		t.Fatalf("status --json does not follow its schema: %v\n%s", err, out)
	}
	var st struct {
		Schema int `json:"schema"`
		Mounts []struct {
			Mountpoint string `json:"mountpoint"`
			ReadOnly   bool   `json:"read_only"`
			Online     bool   `json:"online"`
			Log        string `json:"log"`
			Waiting    struct {
				Files, Bytes int64
			} `json:"waiting"`
			IO struct {
				Written int64 `json:"written_bytes"`
			} `json:"io"`
			Pending []struct {
				Key  string `json:"key"`
				Size int64  `json:"size"`
			} `json:"pending"`
		} `json:"mounts"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, m := range st.Mounts {
		switch m.Mountpoint {
		case rw.dir:
			found++
			if m.ReadOnly || !m.Online || m.Waiting.Files != 1 || m.Waiting.Bytes != int64(len(data)) ||
				len(m.Pending) != 1 || m.Pending[0].Key != "waits.txt" || m.IO.Written != int64(len(data)) || m.Log != rw.log {
				t.Errorf("the writable mount: %+v", m)
			}
		case ro.dir:
			found++
			if !m.ReadOnly || m.Waiting.Files != 0 {
				t.Errorf("the read-only mount: %+v", m)
			}
		}
	}
	if found != 2 {
		t.Fatalf("status --json lists %d of the 2 mounts:\n%s", found, out)
	}
	out, code = s.run(t, "status", rw.dir)
	if code != 0 || !strings.Contains(out, "online") || !strings.Contains(out, "1 file (18 B) waiting for upload, 0 failed") ||
		!strings.Contains(out, "waits.txt  18 bytes") {
		t.Errorf("status MOUNTPOINT (%d):\n%s", code, out)
	}
	if out, code := s.run(t, "status", "--help"); code != 0 || !strings.Contains(out, "Usage: ssecfs status") {
		t.Errorf("status --help (%d): %s", code, out)
	}
	dir := t.TempDir()
	if out, code := s.run(t, "status", dir); code != 2 || strings.TrimSpace(out) != "ssecfs status: "+dir+" is not mounted" {
		t.Errorf("status of a folder not mounted (%d): %s", code, out)
	}
}

// --metrics serves Prometheus metrics that count what the mount did, by
// operation and status, and never name an object.
func TestMetricsCountWhatTheMountDidWithoutNames(t *testing.T) {
	s := loadServer(t, "rgw")
	sock := filepath.Join(t.TempDir(), "metrics.sock")
	m := s.mount(t, s.bucket(t), "--metrics", "unix:"+sock, "--write-back", "0")
	const name = "secret-plans-q3.txt"
	data := random(t, 100<<10)
	if err := os.WriteFile(filepath.Join(m.dir, name), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(m.dir, name)); err != nil || len(got) != len(data) {
		t.Fatalf("read back: %v", err)
	}
	if st, err := os.Stat(sock); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("the metrics socket is not private: %v %v", st.Mode(), err)
	}
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	resp, err := client.Get("http://ssecfs/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(body), "secret-plans") {
		t.Fatal("the metrics name an object")
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("the metrics do not parse: %v", err)
	}
	value := func(name string, labels ...string) float64 {
		t.Helper()
		f := fams[name]
		if f == nil {
			t.Fatalf("no %s in the metrics", name)
		}
		var sum float64
		for _, mt := range f.Metric {
			ok := true
			for i := 0; i+1 < len(labels); i += 2 {
				has := false
				for _, l := range mt.Label {
					has = has || (l.GetName() == labels[i] && l.GetValue() == labels[i+1])
				}
				ok = ok && has
			}
			if !ok {
				continue
			}
			switch {
			case mt.Counter != nil:
				sum += mt.Counter.GetValue()
			case mt.Gauge != nil:
				sum += mt.Gauge.GetValue()
			case mt.Histogram != nil:
				sum += float64(mt.Histogram.GetSampleCount())
			}
		}
		return sum
	}
	if v := value("ssecfs_online"); v != 1 {
		t.Errorf("ssecfs_online %v", v)
	}
	if v := value("ssecfs_uploads_total"); v != 1 {
		t.Errorf("ssecfs_uploads_total %v, want 1", v)
	}
	if v := value("ssecfs_uploaded_bytes_total"); v != float64(len(data)) {
		t.Errorf("ssecfs_uploaded_bytes_total %v, want %d", v, len(data))
	}
	if v := value("ssecfs_written_bytes_total"); v != float64(len(data)) {
		t.Errorf("ssecfs_written_bytes_total %v", v)
	}
	if v := value("ssecfs_upload_queue_files"); v != 0 {
		t.Errorf("ssecfs_upload_queue_files %v", v)
	}
	if v := value("ssecfs_requests_total", "op", "put", "status", "200"); v < 1 {
		t.Errorf("no PUT answered 200 counted: %v", v)
	}
	if v := value("ssecfs_request_duration_seconds", "op", "put"); v < 1 {
		t.Errorf("no PUT latency: %v", v)
	}
	for _, f := range fams {
		for _, mt := range f.Metric {
			for _, l := range mt.Label {
				if l.GetName() == "op" && !slices.Contains(store.Ops, l.GetValue()) {
					t.Errorf("%s: op %q is not one of the fixed set", f.GetName(), l.GetValue())
				}
			}
		}
	}
}

// --metrics on an address other machines reach is refused unless asked.
func TestMetricsOnANonLoopbackAddressAreRefused(t *testing.T) {
	s := loadServer(t, "rgw")
	out, code := s.run(t, "mount", "--endpoint", s.endpoint, "--key-file", keyFile(t, secret),
		"--metrics", "0.0.0.0:0", s.bucket(t), t.TempDir())
	if code != 1 || !strings.Contains(out, "--metrics 0.0.0.0:0: not a loopback address") {
		t.Fatalf("mount (%d): %s", code, out)
	}
}
