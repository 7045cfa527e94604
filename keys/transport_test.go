package keys

import (
	"context"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// login tries to fetch a secret with OS_* variables pointing Keystone at
// authURL; only the transport is under test, so any answer past it will do.
func login(t *testing.T, b Barbican, authURL string, env map[string]string) error {
	t.Helper()
	for _, k := range []string{"OS_CLOUD", "OS_CACERT", "OS_INSECURE", "OS_CERT", "OS_KEY"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	t.Setenv("OS_AUTH_URL", authURL)
	t.Setenv("OS_USERNAME", "u")
	t.Setenv("OS_PASSWORD", "p")
	t.Setenv("OS_PROJECT_NAME", "p")
	t.Setenv("OS_USER_DOMAIN_NAME", "Default")
	t.Setenv("OS_PROJECT_DOMAIN_NAME", "Default")
	for k, v := range env {
		t.Setenv(k, v)
	}
	b.Secret = "0b3a1d6e-0f5c-4a57-9a4e-2f1a0c9b7d11"
	b.Warn = func(string) {}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := FromBarbican(ctx, b)
	return err
}

// caFile writes the test server's certificate where OS_CACERT can name it.
func caFile(t *testing.T, srv *httptest.Server) string {
	p := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600)
	return p
}

func TestLoopbackIsDecidedOnTheNameAsWritten(t *testing.T) {
	for host, want := range map[string]bool{"localhost": true, "LOCALHOST.": true, "127.0.0.1": true, "127.1.2.3": true,
		"::1": true, "[::1]": true, "10.0.0.1": false, "keystone.internal": false, "127.0.0.1.nip.io": false, "localhost.example": false} {
		if Loopback(host) != want {
			t.Errorf("Loopback(%q) = %v", host, !want)
		}
	}
}

// Plain HTTP to another machine is refused before anything is sent,
// naming the option; loopback and --os-allow-http go ahead.
func TestPlainHTTPKeystoneIsRefusedOutsideLoopback(t *testing.T) {
	err := login(t, Barbican{}, "http://keystone.invalid:5000/v3", nil)
	if !errors.Is(err, ErrTransport) || !strings.Contains(err.Error(), "--os-allow-http") {
		t.Fatalf("http:// Keystone on another host: %v, want a refusal naming --os-allow-http", err)
	}
	err = login(t, Barbican{AllowHTTP: true}, "http://keystone.invalid:5000/v3", nil)
	if errors.Is(err, ErrTransport) {
		t.Fatalf("with --os-allow-http: %v", err)
	}
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Error(w, "no", http.StatusUnauthorized)
	}))
	defer srv.Close()
	if err := login(t, Barbican{}, srv.URL+"/v3", nil); errors.Is(err, ErrTransport) || hits.Load() == 0 {
		t.Fatalf("http:// Keystone on 127.0.0.1: %v (%d requests)", err, hits.Load())
	}
}

// A certificate the client does not trust fails; OS_INSECURE alone is
// refused, naming --os-insecure; OS_CACERT makes it verify.
func TestKeystoneCertificatesAreVerifiedUnlessOsInsecure(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusUnauthorized)
	}))
	defer srv.Close()
	if err := login(t, Barbican{}, srv.URL+"/v3", nil); err == nil || !strings.Contains(err.Error(), "does not verify") {
		t.Fatalf("untrusted certificate: %v", err)
	}
	err := login(t, Barbican{}, srv.URL+"/v3", map[string]string{"OS_INSECURE": "true"})
	if !errors.Is(err, ErrTransport) || !strings.Contains(err.Error(), "--os-insecure") {
		t.Fatalf("OS_INSECURE without --os-insecure: %v", err)
	}
	if err := login(t, Barbican{Insecure: true}, srv.URL+"/v3", map[string]string{"OS_INSECURE": "true"}); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("OS_INSECURE with --os-insecure: %v, want Keystone's 401", err)
	}
	if err := login(t, Barbican{}, srv.URL+"/v3", map[string]string{"OS_CACERT": caFile(t, srv)}); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("with OS_CACERT: %v, want Keystone's 401", err)
	}
}

// A redirect to another host would carry the POSTed password or the
// token there: refused, and the other host hears nothing.
func TestKeystoneRedirectsToAnotherHostAreRefused(t *testing.T) {
	var elsewhere atomic.Int32
	other := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { elsewhere.Add(1) }))
	defer other.Close()
	front := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Another host name for this machine: a different host to the client.
		to := strings.Replace(other.URL, "127.0.0.1", "localhost", 1)
		http.Redirect(w, r, to+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	defer front.Close()
	err := login(t, Barbican{Insecure: true}, front.URL+"/v3", map[string]string{"OS_INSECURE": "true"})
	if !errors.Is(err, ErrTransport) || !strings.Contains(err.Error(), "redirected to another host") {
		t.Fatalf("redirect to another host: %v", err)
	}
	if elsewhere.Load() != 0 {
		t.Fatalf("the other host got %d requests", elsewhere.Load())
	}
}
