package keys

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/keymanager/v1/secrets"
	"github.com/gophercloud/utils/v2/openstack/clientconfig"
)

// Barbican says where the key lives in OpenStack Barbican and how to log
// in. Credentials come from clouds.yaml (Cloud, or OS_CLOUD) or the usual
// OS_* variables: password or application credential
// (OS_AUTH_TYPE=v3applicationcredential).
type Barbican struct {
	Secret    string // the secret's href (as `openstack secret store` prints it) or UUID
	Cloud     string // clouds.yaml entry; default OS_CLOUD
	Region    string // default OS_REGION_NAME or the cloud's
	Interface string // public, internal or admin; default OS_INTERFACE or public
	// AllowHTTP permits plain HTTP to hosts other than this machine;
	// Insecure permits unverified TLS when OS_INSECURE or clouds.yaml ask
	// for it (transport.go). Warn gets a warning for the user.
	AllowHTTP, Insecure bool
	Warn                func(string)
}

// Errors of the Barbican source; each message says what to fix.
var (
	ErrKeystoneUnreachable = errors.New("cannot reach Keystone")
	ErrBadCredentials      = errors.New("Keystone refused the credentials (401)")
	ErrSecretForbidden     = errors.New("the secret is not visible to this project (403)")
	ErrNoSecret            = errors.New("no such secret (404)")
	ErrNoKeyManager        = errors.New("no key-manager endpoint in the service catalog")
)

// secretID is the UUID at the end of a secret href, or the UUID itself.
func secretID(ref string) (string, error) {
	ref = strings.TrimSpace(ref)
	if u, err := url.Parse(ref); err == nil && u.Scheme != "" {
		parts := strings.Split(strings.TrimSuffix(u.Path, "/"), "/")
		if len(parts) < 2 || parts[len(parts)-2] != "secrets" {
			return "", fmt.Errorf("%q is not a Barbican secret href (…/v1/secrets/UUID)", ref)
		}
		ref = parts[len(parts)-1]
	}
	if len(ref) != 36 || strings.Count(ref, "-") != 4 {
		return "", fmt.Errorf("%q is neither a secret href nor a secret UUID", ref)
	}
	return ref, nil
}

// client logs in to Keystone and finds the key manager in the catalog.
func (b Barbican) client(ctx context.Context) (*gophercloud.ServiceClient, error) {
	hc, err := b.httpClient()
	if err != nil {
		return nil, err
	}
	c, err := clientconfig.NewServiceClient(ctx, "key-manager", &clientconfig.ClientOpts{
		Cloud: b.Cloud, RegionName: b.Region, EndpointType: b.Interface, HTTPClient: hc,
	})
	if err != nil {
		return nil, b.explain(err, "logging in to Keystone")
	}
	return c, nil
}

// explain turns a gophercloud error into one that says what went wrong.
func (b Barbican) explain(err error, doing string) error {
	var (
		nerr  net.Error
		uerr  *url.Error
		noEnd *gophercloud.ErrEndpointNotFound
		cverr *tls.CertificateVerificationError
	)
	switch {
	case errors.Is(err, ErrTransport):
		var u *url.Error
		if errors.As(err, &u) {
			err = u.Err // the URL is in the message already
		}
		return fmt.Errorf("%s: %w", doing, err)
	case errors.As(err, &cverr):
		return fmt.Errorf("%s: the server's certificate does not verify (%v); give its CA with OS_CACERT or cacert in clouds.yaml", doing, cverr.Err)
	case gophercloud.ResponseCodeIs(err, http.StatusUnauthorized):
		return fmt.Errorf("%s: %w; check OS_USERNAME/OS_PASSWORD or the application credential", doing, ErrBadCredentials)
	case gophercloud.ResponseCodeIs(err, http.StatusForbidden):
		return fmt.Errorf("%s: %w; log in to the project that owns it, or ask for an ACL", doing, ErrSecretForbidden)
	case gophercloud.ResponseCodeIs(err, http.StatusNotFound):
		return fmt.Errorf("%s: %w; check the href", doing, ErrNoSecret)
	case errors.As(err, &noEnd):
		return fmt.Errorf("%s: %w for region %q and interface %q; check --os-region/OS_REGION_NAME and --os-interface",
			doing, ErrNoKeyManager, firstSet(b.Region, os.Getenv("OS_REGION_NAME")), firstSet(b.Interface, os.Getenv("OS_INTERFACE"), "public"))
	case errors.As(err, &nerr), errors.As(err, &uerr):
		return fmt.Errorf("%s: %w: %v", doing, ErrKeystoneUnreachable, err)
	}
	return fmt.Errorf("%s: %v", doing, err)
}

func firstSet(v ...string) string {
	for _, s := range v {
		if s != "" {
			return s
		}
	}
	return ""
}

// FromBarbican fetches the secret's payload and parses it as a key. The
// payload is held only in memory and wiped once parsed.
func FromBarbican(ctx context.Context, b Barbican) (*Key, error) {
	id, err := secretID(b.Secret)
	if err != nil {
		return nil, err
	}
	c, err := b.client(ctx)
	if err != nil {
		return nil, err
	}
	payload, err := secrets.GetPayload(ctx, c, id, secrets.GetPayloadOpts{PayloadContentType: "*/*"}).Extract()
	if err != nil {
		return nil, b.explain(err, "fetching secret "+id)
	}
	k, err := Parse(payload)
	if err != nil {
		return nil, fmt.Errorf("secret %s: %w", id, err)
	}
	return k, nil
}

// printable is the alphabet of generated keys: what pwgen uses, so that
// every client takes the key as typed.
const printable = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// Generate makes a new key of 32 printable characters from crypto/rand.
func Generate() (*Key, error) {
	raw := make([]byte, Size)
	defer wipe(raw)
	for i := range raw {
		n, err := rand.Int(rand.Reader, big.NewInt(int64(len(printable))))
		if err != nil {
			return nil, err
		}
		raw[i] = printable[n.Int64()]
	}
	return newKey(raw), nil
}

// StoreInBarbican stores k as the provider's guide does with `openstack
// secret store --algorithm aes --bit-length 256 --payload ...` and returns
// the secret's href.
func StoreInBarbican(ctx context.Context, b Barbican, name string, k *Key) (string, error) {
	c, err := b.client(ctx)
	if err != nil {
		return "", err
	}
	s, err := secrets.Create(ctx, c, secrets.CreateOpts{
		Name: name, Algorithm: "aes", BitLength: 256, Mode: "cbc",
		Payload: string(k.Bytes()), PayloadContentType: "text/plain", SecretType: secrets.OpaqueSecret,
	}).Extract()
	if err != nil {
		return "", b.explain(err, "storing the secret")
	}
	return s.SecretRef, nil
}
