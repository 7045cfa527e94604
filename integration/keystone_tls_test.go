//go:build integration

package integration

import (
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
)

// keystoneFront serves handler over TLS on loopback with the test CA's
// certificate, which clients trust only with OS_CACERT.
func keystoneFront(t *testing.T, s *server, handler http.Handler) string {
	t.Helper()
	_, cert := s.proxyCerts(t)
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: handler}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return "https://" + l.Addr().(*net.TCPAddr).String()
}

// Keystone behind TLS, as a cloud serves it: the certificate is verified,
// OS_INSECURE alone is refused, a redirect to another host is refused,
// and plain HTTP to another machine is refused before anything is sent.
func TestKeystoneTransportFollowsTheRulesOfS3(t *testing.T) {
	s := loadServer(t, "minio")
	osEnv := openstackEnv(t, "env")
	href := storeSecret(t, osEnv, secret)
	b := s.bucket(t)
	keystone, _ := url.Parse(osEnv["OS_AUTH_URL"])
	keystone.Path = ""
	front := keystoneFront(t, s, httputil.NewSingleHostReverseProxy(keystone))
	redirect := keystoneFront(t, s, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// localhost is this machine under another name: another host.
		http.Redirect(w, r, strings.Replace(front, "127.0.0.1", "localhost", 1)+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	tlsEnv := func(authURL string, more ...string) map[string]string {
		env := with1(osEnv, "OS_AUTH_URL", authURL+"/v3")
		for i := 0; i+1 < len(more); i += 2 {
			env[more[i]] = more[i+1]
		}
		return env
	}
	for _, tc := range []struct {
		name, want string
		env        map[string]string
		args       []string
	}{
		{"certificate not trusted", "does not verify", tlsEnv(front), nil},
		{"OS_INSECURE alone", "--os-insecure", tlsEnv(front, "OS_INSECURE", "true"), nil},
		{"redirect to another host", "redirected to another host", tlsEnv(redirect, "OS_CACERT", s.ca), nil},
		{"plain HTTP elsewhere", "--os-allow-http", tlsEnv("http://keystone.invalid:5000"), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"mount", "--endpoint", s.endpoint, "--barbican-secret", href,
				"--log-file", filepath.Join(t.TempDir(), "log")}, tc.args...)
			out, code := runWith(t, s.withOS(tc.env), append(args, b, t.TempDir())...)
			if code == 0 {
				t.Fatal("mount succeeded")
			}
			if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 1 || !strings.Contains(out, tc.want) {
				t.Fatalf("want one line with %q, got:\n%s", tc.want, out)
			}
		})
	}
	t.Run("CA given", func(t *testing.T) {
		s.barbicanMount(t, tlsEnv(front, "OS_CACERT", s.ca), href, b)
	})
	t.Run("OS_INSECURE with --os-insecure", func(t *testing.T) {
		s.barbicanMount(t, tlsEnv(front, "OS_INSECURE", "true"), href, b, "--os-insecure")
	})
}
