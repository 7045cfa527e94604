//go:build integration

package integration

import (
	"crypto/md5"
	"encoding/base64"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// exchange is one request through the recording proxy, without its key.
type exchange struct {
	method, path, query string
	keyMD5              string // the key-MD5 header of the request
	keyed               bool   // the key header itself was present
	copyFrom            string // x-amz-copy-source: a server-side copy
	copyKeyed           bool   // the copy source's key header was present
	status              int
	echoAlgo, echoMD5   string
}

// recorder is a TLS-terminating reverse proxy (with the test CA's server
// certificate) between ssecfs and a real server. It records what really
// crosses the wire, so the test does not rely on ssecfs's own account.
type recorder struct {
	URL   string
	close func()        // stops the proxy: the network is gone
	delay time.Duration // added before each request is forwarded, like a distant server
	mu    sync.Mutex
	log   []exchange
}

func newRecorder(t *testing.T, s *server) *recorder {
	t.Helper()
	r := &recorder{}
	r.URL, r.close = s.tlsProxy(t, func(next http.RoundTripper) http.RoundTripper {
		return &recordingTransport{r: r, next: next}
	})
	return r
}

type recordingTransport struct {
	r    *recorder
	next http.RoundTripper
}

func (rt *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if rt.r.delay > 0 {
		time.Sleep(rt.r.delay) // latency injected on purpose, not synchronisation
	}
	x := exchange{
		method: req.Method, path: req.URL.Path, query: req.URL.RawQuery,
		keyMD5:    req.Header.Get("X-Amz-Server-Side-Encryption-Customer-Key-Md5"),
		keyed:     req.Header.Get("X-Amz-Server-Side-Encryption-Customer-Key") != "",
		copyFrom:  req.Header.Get("X-Amz-Copy-Source"),
		copyKeyed: req.Header.Get("X-Amz-Copy-Source-Server-Side-Encryption-Customer-Key") != "",
	}
	resp, err := rt.next.RoundTrip(req)
	if resp != nil {
		x.status = resp.StatusCode
		x.echoAlgo = resp.Header.Get("X-Amz-Server-Side-Encryption-Customer-Algorithm")
		x.echoMD5 = resp.Header.Get("X-Amz-Server-Side-Encryption-Customer-Key-Md5")
	}
	rt.r.mu.Lock()
	rt.r.log = append(rt.r.log, x)
	rt.r.mu.Unlock()
	return resp, err
}

func (r *recorder) exchanges() []exchange {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]exchange(nil), r.log...)
}

// touchesObject says whether a request reads or writes an object's data
// or metadata (as opposed to listing a bucket, deleting, or aborting an
// upload): path-style /bucket/key with a key.
func touchesObject(x exchange) bool {
	_, key, _ := strings.Cut(strings.TrimPrefix(x.path, "/"), "/")
	return key != "" && !strings.Contains(x.query, "list-type") && x.query != "location=" && x.method != "DELETE"
}

// mustEcho says whether a successful answer to x must echo the key:
// reads, PUTs and parts. MinIO echoes neither CreateMultipartUpload nor
// copies, RGW not CompleteMultipartUpload; ssecfs proves those objects
// with a keyed HEAD afterwards, which is checked here like any HEAD.
func mustEcho(x exchange) bool {
	return x.status/100 == 2 && x.method != "POST" && x.copyFrom == ""
}

func TestEveryDataRequestOnTheWireCarriesTheKey(t *testing.T) {
	h := md5.Sum([]byte(secret))
	ourMD5 := base64.StdEncoding.EncodeToString(h[:])
	eachServer(t, func(t *testing.T, s *server) {
		b := s.bucket(t)
		src := t.TempDir()
		files := writeTree(t, src, false)
		s.aws(t, append([]string{"s3", "sync", src, "s3://" + b + "/"}, sse(secret)...)...)
		rec := newRecorder(t, s)
		m := s.mount(t, b, "--endpoint", rec.URL, "--write-back", "0") // the later --endpoint wins
		for name, data := range files {
			got, err := fileSum(t, filepath.Join(m.dir, name))
			if err != nil || got != sum(data) {
				t.Errorf("%s: %v or bytes differ", name, err)
			}
		}
		// Writes of every kind: a multipart upload, a PUT, a folder marker,
		// copies for chmod and rename of uploaded files.
		os.WriteFile(filepath.Join(m.dir, "multipart.bin"), random(t, 20<<20), 0o644)
		os.WriteFile(filepath.Join(m.dir, "small.txt"), []byte("small"), 0o644)
		os.Mkdir(filepath.Join(m.dir, "folder"), 0o755)
		if err := os.Chmod(filepath.Join(m.dir, "tiny.txt"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(m.dir, "one-mib.bin"), filepath.Join(m.dir, "renamed.bin")); err != nil {
			t.Fatal(err)
		}
		m.unmount(t)

		objectRequests, creates, completes, copies := 0, 0, 0, 0
		for _, x := range rec.exchanges() {
			if !touchesObject(x) {
				continue
			}
			objectRequests++
			if !x.keyed || x.keyMD5 != ourMD5 {
				t.Errorf("%s %s?%s went without our key (key-MD5 %q)", x.method, x.path, x.query, x.keyMD5)
			}
			if x.copyFrom != "" {
				copies++
				if !x.copyKeyed {
					t.Errorf("copy %s from %s went without the source's key", x.path, x.copyFrom)
				}
			}
			if x.method == "POST" && strings.Contains(x.query, "uploads") {
				creates++
			}
			if x.method == "POST" && strings.Contains(x.query, "uploadId") {
				completes++
			}
			if mustEcho(x) && (x.echoAlgo != "AES256" || x.echoMD5 != ourMD5) {
				t.Errorf("%s %s answered %d without the SSE-C echo (%q, %q)", x.method, x.path, x.status, x.echoAlgo, x.echoMD5)
			}
		}
		if objectRequests < 2*len(files) || creates == 0 || completes == 0 || copies == 0 {
			t.Fatalf("%d object requests, %d multipart starts, %d completions, %d copies: is the proxy in the path?",
				objectRequests, creates, completes, copies)
		}
		s.assertAllEncrypted(t, b)
		t.Logf("%d exchanges, %d touching objects (%d copies, %d multipart uploads), all keyed; answers echoed",
			len(rec.exchanges()), objectRequests, copies, completes)
	})
}

func TestLostNetworkGivesAnErrorNotAHang(t *testing.T) {
	s := loadServer(t, "minio")
	b := s.bucket(t)
	src := filepath.Join(t.TempDir(), "f")
	os.WriteFile(src, random(t, 3<<20), 0o644)
	s.aws(t, append([]string{"s3", "cp", src, "s3://" + b + "/f"}, sse(secret)...)...)
	rec := newRecorder(t, s)
	m := s.mount(t, b, "--endpoint", rec.URL, "--timeout", "5s", "--retries", "2")
	if _, err := os.Stat(filepath.Join(m.dir, "f")); err != nil {
		t.Fatal(err)
	}
	rec.close() // the network goes away under an open mount
	_, err := os.ReadFile(filepath.Join(m.dir, "f"))
	if err == nil {
		t.Fatal("read succeeded with the server gone")
	}
	t.Logf("read with the network gone: %v", err)
	// MinIO's listing carried the attributes, so the open, which proves
	// the key with a HEAD, is what fails first.
	if log := readLog(m.log); !strings.Contains(log, "read failed") && !strings.Contains(log, "open failed") {
		t.Error("the failed open or read is not in the log")
	}
}
