package keys

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"

	"github.com/gophercloud/utils/v2/openstack/clientconfig"
)

// Keystone and Barbican get the transport rules of S3: the password or
// application credential, the token and the key itself cross this
// connection. HTTPS unless the host is this machine (or --os-allow-http,
// for a cloud's internal interface on a network the user trusts);
// certificates verified unless --os-insecure says otherwise (OS_INSECURE
// and clouds.yaml's `verify: false` alone are refused); no redirect to
// another host, nor from HTTPS to HTTP: Go's client would carry the
// X-Auth-Token header and a POSTed password along.

// ErrTransport is a connection to Keystone or Barbican refused by these
// rules; the message names the option that allows it.
var ErrTransport = errors.New("refused")

// Loopback says whether host, as written (a name is not resolved), is
// this machine: localhost, 127.0.0.0/8 or ::1.
func Loopback(host string) bool {
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// httpClient is the client for Keystone and Barbican under these rules,
// with the CA and client certificate that OS_CACERT, OS_CERT, OS_KEY or
// the cloud's entry name.
func (b Barbican) httpClient() (*http.Client, error) {
	cloud := new(clientconfig.Cloud)
	if b.Cloud != "" || os.Getenv("OS_CLOUD") != "" {
		c, err := clientconfig.GetCloudFromYAML(&clientconfig.ClientOpts{Cloud: b.Cloud})
		if err != nil {
			return nil, err
		}
		cloud = c
	}
	conf, err := clientconfig.PrepareTLSConfig("OS_", cloud)
	if err != nil {
		return nil, err
	}
	if conf.InsecureSkipVerify {
		if !b.Insecure {
			return nil, fmt.Errorf("%w: OS_INSECURE or `verify: false` in clouds.yaml turn off the verification of Keystone's and Barbican's certificates, and anyone on the path could take the credentials and the key; give their CA with OS_CACERT (or cacert in clouds.yaml), or --os-insecure to accept that", ErrTransport)
		}
		msg := "Keystone's and Barbican's certificates are not verified (--os-insecure): anyone on the path can take the credentials and the key"
		if b.Warn != nil {
			b.Warn(msg)
		} else {
			fmt.Fprintln(os.Stderr, "ssecfs: warning:", msg)
		}
	}
	conf.MinVersion = tls.VersionTLS12
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = conf
	return &http.Client{
		Transport:     plainGuard{next: tr, allowHTTP: b.AllowHTTP},
		CheckRedirect: sameHostRedirects,
	}, nil
}

// plainGuard refuses plain-HTTP requests to other machines before they
// are sent: the auth URL, the catalog's endpoints and redirects alike.
type plainGuard struct {
	next      http.RoundTripper
	allowHTTP bool
}

func (g plainGuard) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Scheme != "https" && !g.allowHTTP && !Loopback(r.URL.Hostname()) {
		return nil, fmt.Errorf("%w: %s://%s is plain HTTP: the credentials, the token and the key would cross the network in clear; use https://, or give --os-allow-http for a network you trust", ErrTransport, r.URL.Scheme, r.URL.Host)
	}
	return g.next.RoundTrip(r)
}

// sameHostRedirects follows a redirect only to the same host, and never
// from HTTPS to HTTP.
func sameHostRedirects(r *http.Request, via []*http.Request) error {
	from := via[0].URL
	switch {
	case !strings.EqualFold(r.URL.Host, from.Host):
		return fmt.Errorf("%w: %s redirected to another host, %s, which would get the token", ErrTransport, from.Host, r.URL.Host)
	case from.Scheme == "https" && r.URL.Scheme != "https":
		return fmt.Errorf("%w: %s redirected from HTTPS to plain HTTP", ErrTransport, from.Host)
	case len(via) >= 10:
		return fmt.Errorf("%w: %s redirected 10 times", ErrTransport, from.Host)
	}
	return nil
}
