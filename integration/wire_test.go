//go:build integration

package integration

import (
	"crypto/md5"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
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
	up, err := url.Parse(s.endpoint)
	if err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(s.ca)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	cert, err := tls.LoadX509KeyPair(filepath.Join(stateDir, "tls/server.crt"), filepath.Join(stateDir, "tls/server.key"))
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{}
	proxy := httputil.NewSingleHostReverseProxy(up)
	// The Host header stays the proxy's, which is what the client signed.
	proxy.Transport = &recordingTransport{r: r, next: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: proxy}
	go srv.Serve(l)
	r.close = func() { srv.Close() }
	t.Cleanup(r.close)
	r.URL = "https://" + l.Addr().(*net.TCPAddr).String()
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
		keyMD5: req.Header.Get("X-Amz-Server-Side-Encryption-Customer-Key-Md5"),
		keyed:  req.Header.Get("X-Amz-Server-Side-Encryption-Customer-Key") != "",
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

// touchesObject says whether a request reads or writes an object (as
// opposed to listing a bucket): path-style /bucket/key with a key.
func touchesObject(x exchange) bool {
	_, key, _ := strings.Cut(strings.TrimPrefix(x.path, "/"), "/")
	return key != "" && !strings.Contains(x.query, "list-type") && x.query != "location="
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
		m := s.mount(t, b, "--endpoint", rec.URL) // the later --endpoint wins
		for name, data := range files {
			got, err := fileSum(t, filepath.Join(m.dir, name))
			if err != nil || got != sum(data) {
				t.Errorf("%s: %v or bytes differ", name, err)
			}
		}
		objectRequests := 0
		for _, x := range rec.exchanges() {
			if !touchesObject(x) {
				continue
			}
			objectRequests++
			if !x.keyed || x.keyMD5 != ourMD5 {
				t.Errorf("%s %s?%s went without our key (key-MD5 %q)", x.method, x.path, x.query, x.keyMD5)
			}
			if x.status/100 == 2 && (x.echoAlgo != "AES256" || x.echoMD5 != ourMD5) {
				t.Errorf("%s %s answered %d without the SSE-C echo (%q, %q)", x.method, x.path, x.status, x.echoAlgo, x.echoMD5)
			}
		}
		// HEADs for metadata and ranged GETs for every file at least.
		if objectRequests < 2*len(files) {
			t.Fatalf("only %d object requests recorded for %d files: is the proxy in the path?", objectRequests, len(files))
		}
		t.Logf("%d exchanges, %d touching objects, all keyed and echoed", len(rec.exchanges()), objectRequests)
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
	if !strings.Contains(readLog(m.log), "read failed") {
		t.Error("the failed read is not in the log")
	}
}
