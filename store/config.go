package store

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/minio/minio-go/v7/pkg/credentials"
	"gopkg.in/ini.v1"

	"github.com/ssecfs/ssecfs/keys"
)

// Config says how to reach the bucket. Zero values take the defaults the
// AWS command line uses, so a profile that works for `aws s3` works here.
type Config struct {
	Bucket   string
	Endpoint string // URL; default AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, the profile's endpoint_url, else AWS
	Region   string // default AWS_REGION, AWS_DEFAULT_REGION, the profile's region, else us-east-1
	Profile  string // ~/.aws/config and ~/.aws/credentials profile; default AWS_PROFILE or "default"
	CAFile   string // extra CA bundle; default AWS_CA_BUNDLE or the profile's ca_bundle
	// AllowHTTP permits a plain-HTTP endpoint. SSE-C sends the key in a
	// header, so this is for tests on loopback only.
	AllowHTTP  bool
	Timeout    time.Duration // per request; default 60s
	MaxRetries int           // per request, for network errors and 5xx; default 4
	Key        *keys.Key
	Log        *slog.Logger
	Trace      bool // log every request (method, path, status; never headers)
	// Observe, if set, is told of every request once it is answered or
	// failed (requests.go): for the metrics, never with a name.
	Observe func(Request)
}

// profileSettings holds what ssecfs reads from ~/.aws/config itself;
// credentials are resolved by minio-go's credential chain.
type profileSettings struct {
	region, endpoint, caBundle string
}

// awsFile is the AWS CLI's config or credentials file: the variable's
// value, else ~/.aws/NAME.
func awsFile(variable, name string) string {
	if p := os.Getenv(variable); p != "" {
		return p
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".aws", name)
}

// profileMissing names a profile asked for by name (--profile,
// AWS_PROFILE) that neither file has, as the AWS CLI refuses it: a typo
// must not fall back to other credentials.
func profileMissing(name string) error {
	config, creds := awsFile("AWS_CONFIG_FILE", "config"), awsFile("AWS_SHARED_CREDENTIALS_FILE", "credentials")
	if f, err := ini.Load(config); err == nil && (f.HasSection("profile "+name) || f.HasSection(name)) {
		return nil
	}
	if f, err := ini.Load(creds); err == nil && f.HasSection(name) {
		return nil
	}
	return fmt.Errorf("AWS profile %q not found: neither %s ([profile %s]) nor %s ([%s]) has it", name, config, name, creds, name)
}

func loadProfile(name string) profileSettings {
	path := awsFile("AWS_CONFIG_FILE", "config")
	f, err := ini.Load(path)
	if err != nil {
		return profileSettings{}
	}
	section := "profile " + name
	if name == "default" {
		section = "default"
	}
	s, err := f.GetSection(section)
	if err != nil {
		return profileSettings{}
	}
	return profileSettings{
		region:   s.Key("region").String(),
		endpoint: s.Key("endpoint_url").String(),
		caBundle: s.Key("ca_bundle").String(),
	}
}

func firstNonEmpty(v ...string) string {
	for _, s := range v {
		if s != "" {
			return s
		}
	}
	return ""
}

// resolved is a Config with every default applied.
type resolved struct {
	Config
	url       *url.URL
	creds     *credentials.Credentials
	pathStyle bool
}

func resolve(c Config) (*resolved, error) {
	explicitProfile := c.Profile != ""
	c.Profile = firstNonEmpty(c.Profile, os.Getenv("AWS_PROFILE"), "default")
	if c.Profile != "default" {
		if err := profileMissing(c.Profile); err != nil {
			return nil, err
		}
	}
	p := loadProfile(c.Profile)
	c.Region = firstNonEmpty(c.Region, os.Getenv("AWS_REGION"), os.Getenv("AWS_DEFAULT_REGION"), p.region, "us-east-1")
	c.Endpoint = firstNonEmpty(c.Endpoint, os.Getenv("AWS_ENDPOINT_URL_S3"), os.Getenv("AWS_ENDPOINT_URL"), p.endpoint,
		"https://s3."+c.Region+".amazonaws.com")
	c.CAFile = firstNonEmpty(c.CAFile, os.Getenv("AWS_CA_BUNDLE"), p.caBundle)
	if c.Timeout <= 0 {
		c.Timeout = 60 * time.Second
	}
	if c.MaxRetries <= 0 {
		c.MaxRetries = 4
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	u, err := url.Parse(c.Endpoint)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("endpoint %q is not a URL like https://host:port", c.Endpoint)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !c.AllowHTTP {
			return nil, fmt.Errorf("endpoint %s is plain HTTP: SSE-C sends the key with every request, so it needs https://", c.Endpoint)
		}
		// Decided on the name as written, as for Keystone (keys.Loopback).
		if !keys.Loopback(u.Hostname()) {
			return nil, fmt.Errorf("endpoint %s is plain HTTP on another machine: --allow-http is for endpoints on this machine only (localhost, 127.0.0.0/8, ::1), since SSE-C sends the key with every request", c.Endpoint)
		}
	default:
		return nil, fmt.Errorf("endpoint %q: scheme must be https", c.Endpoint)
	}
	// The AWS CLI's order: an explicit --profile wins over the environment;
	// otherwise environment variables come first, then the profile files.
	var providers []credentials.Provider
	file := &credentials.FileAWSCredentials{Profile: c.Profile}
	if explicitProfile {
		providers = []credentials.Provider{file}
	} else {
		providers = []credentials.Provider{&credentials.EnvAWS{}, file}
	}
	return &resolved{
		Config:    c,
		url:       u,
		creds:     credentials.NewChainCredentials(providers),
		pathStyle: !strings.HasSuffix(u.Hostname(), ".amazonaws.com"),
	}, nil
}

// transport is the HTTP client side: TLS verification always on, a private
// CA added to the system roots, timeouts so that a silent server cannot
// hang a caller, TCP keepalive that finds a dead connection within about
// half a minute, and enough idle connections for parallel ranged reads.
func (r *resolved) transport() (*http.Transport, error) {
	roots, err := x509.SystemCertPool()
	if err != nil || roots == nil {
		roots = x509.NewCertPool()
	}
	if r.CAFile != "" {
		pem, err := os.ReadFile(r.CAFile)
		if err != nil {
			return nil, fmt.Errorf("CA file: %w", err)
		}
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s holds no PEM certificate", r.CAFile)
		}
	}
	connect := min(10*time.Second, r.Timeout)
	dialer := &net.Dialer{Timeout: connect, KeepAliveConfig: net.KeepAliveConfig{
		Enable: true, Idle: 15 * time.Second, Interval: 5 * time.Second, Count: 3,
	}}
	t := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		TLSClientConfig:       &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   connect,
		ResponseHeaderTimeout: r.Timeout,
		ExpectContinueTimeout: time.Second,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		// S3 servers speak HTTP/1.1; parallel requests use parallel connections.
		ForceAttemptHTTP2: false,
	}
	return t, nil
}
