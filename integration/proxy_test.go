//go:build integration

package integration

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/ssecfs/ssecfs/integration/faultproxy"
)

// proxyCerts returns what a proxy in front of s needs: a client TLS
// config that trusts s, and the test CA's certificate for 127.0.0.1 to
// serve, so that ssecfs verifies TLS through the proxy as usual.
func (s *server) proxyCerts(t *testing.T) (*tls.Config, tls.Certificate) {
	t.Helper()
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
	return &tls.Config{RootCAs: roots}, cert
}

// tlsProxy serves a reverse proxy to s on a free loopback port. wrap gets
// the transport to s and returns the one the proxy uses (to record or
// hold requests). It returns the proxy's URL and a function that stops
// it (also called when the test ends).
func (s *server) tlsProxy(t *testing.T, wrap func(http.RoundTripper) http.RoundTripper) (string, func()) {
	t.Helper()
	return s.tlsProxyAt(t, "127.0.0.1:0", wrap)
}

// tlsProxyAt is tlsProxy on a given address (a server that comes up
// where a client already looks for it).
func (s *server) tlsProxyAt(t *testing.T, addr string, wrap func(http.RoundTripper) http.RoundTripper) (string, func()) {
	t.Helper()
	up, err := url.Parse(s.endpoint)
	if err != nil {
		t.Fatal(err)
	}
	client, cert := s.proxyCerts(t)
	proxy := httputil.NewSingleHostReverseProxy(up)
	// The Host header stays the proxy's, which is what the client signed.
	proxy.Transport = wrap(&http.Transport{TLSClientConfig: client})
	l, err := tls.Listen("tcp", addr, &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: proxy}
	go srv.Serve(l)
	stop := func() { srv.Close() }
	t.Cleanup(stop)
	return "https://" + l.Addr().(*net.TCPAddr).String(), stop
}

// faulty starts a fault-injecting proxy in front of s, its faults drawn
// from seed.
func (s *server) faulty(t *testing.T, seed int64) *faultproxy.Faulty {
	t.Helper()
	client, cert := s.proxyCerts(t)
	f, err := faultproxy.NewFaulty(s.endpoint, client, cert, seed)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	return f
}
