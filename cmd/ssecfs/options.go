package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ssecfs/ssecfs/keys"
	"github.com/ssecfs/ssecfs/store"
)

// s3Options say how to reach the bucket; shared by mount and key check.
type s3Options struct {
	endpoint, region, profile, caFile string
	allowHTTP                         bool
	timeout                           time.Duration
	retries                           int
	observe                           func(store.Request) // the metrics' request counter, or nil
}

func (o *s3Options) add(f *flag.FlagSet) {
	f.StringVar(&o.endpoint, "endpoint", "", "S3 endpoint `URL` (default: $AWS_ENDPOINT_URL_S3, $AWS_ENDPOINT_URL, the profile's endpoint_url, else AWS)")
	f.StringVar(&o.region, "region", "", "region (default: $AWS_REGION, $AWS_DEFAULT_REGION, the profile's, else us-east-1)")
	f.StringVar(&o.profile, "profile", "", "AWS profile name (default: $AWS_PROFILE, else \"default\")")
	f.StringVar(&o.caFile, "ca-file", "", "extra CA certificates (PEM) to trust (default: $AWS_CA_BUNDLE)")
	f.BoolVar(&o.allowHTTP, "allow-http", false, "allow a plain-HTTP endpoint; the key then crosses the network in clear: loopback tests only")
	f.DurationVar(&o.timeout, "timeout", 60*time.Second, "give up on one request after this long (once the server is found unreachable, calls fail within 5s until it answers)")
	f.IntVar(&o.retries, "retries", 4, "retries of a failed request (network errors, 5xx), with backoff")
}

func (o *s3Options) store(bucket string, key *keys.Key, log *slog.Logger, trace bool) (*store.S3, error) {
	return store.New(store.Config{
		Bucket: bucket, Endpoint: o.endpoint, Region: o.region, Profile: o.profile, CAFile: o.caFile,
		AllowHTTP: o.allowHTTP, Timeout: o.timeout, MaxRetries: o.retries, Key: key, Log: log, Trace: trace,
		Observe: o.observe,
	})
}

// parseTarget splits BUCKET[/PREFIX] (an s3:// prefix allowed).
func parseTarget(arg string) (bucket, prefix string, err error) {
	bucket, prefix, _ = strings.Cut(strings.TrimPrefix(arg, "s3://"), "/")
	if bucket == "" {
		return "", "", fmt.Errorf("no bucket in %q", arg)
	}
	if prefix = strings.Trim(prefix, "/"); prefix != "" {
		prefix += "/"
	}
	return bucket, prefix, nil
}

// keySource is where the key comes from: exactly one of a file, a
// variable or Barbican. There is deliberately no option holding the key.
type keySource struct {
	keyFile, keyEnv, keyCommand string
	barbican                    keys.Barbican
}

func (k *keySource) add(f *flag.FlagSet) {
	f.StringVar(&k.barbican.Secret, "barbican-secret", "", "fetch the key from this Barbican secret (`HREF` or UUID)")
	addBarbicanLogin(f, &k.barbican)
	f.StringVar(&k.keyFile, "key-file", "", "read the key from `FILE` (\"-\": standard input)")
	f.StringVar(&k.keyEnv, "key-env", "", "read the key from environment variable `VAR`")
	f.StringVar(&k.keyCommand, "key-command", "", "read the key from the standard output of `CMD`, run with sh -c (pass, secret-tool, systemd-creds)")
}

// addBarbicanLogin adds the options that say how to log in to OpenStack.
func addBarbicanLogin(f *flag.FlagSet, b *keys.Barbican) {
	f.StringVar(&b.Cloud, "os-cloud", "", "clouds.yaml entry to log in to OpenStack with (default: $OS_CLOUD, else the OS_* variables)")
	f.StringVar(&b.Region, "os-region", "", "OpenStack region of the key manager (default: $OS_REGION_NAME or the cloud's)")
	f.StringVar(&b.Interface, "os-interface", "", "key-manager endpoint interface: public, internal or admin (default: $OS_INTERFACE, else public)")
	f.BoolVar(&b.AllowHTTP, "os-allow-http", false, "allow plain-HTTP Keystone and Barbican endpoints on other machines (a cloud's internal network you trust); loopback ones are always allowed")
	f.BoolVar(&b.Insecure, "os-insecure", false, "accept OS_INSECURE or clouds.yaml's verify: false (Keystone's and Barbican's certificates not verified); refused without it")
}

func (k *keySource) check() error {
	n := 0
	for _, s := range []string{k.keyFile, k.keyEnv, k.keyCommand, k.barbican.Secret} {
		if s != "" {
			n++
		}
	}
	switch {
	case n == 0 && credentialKey() != "":
		// A systemd unit's LoadCredentialEncrypted=ssecfs-key:...
		k.keyFile = credentialKey()
	case n == 0:
		return errors.New("no key: give --barbican-secret HREF, --key-file FILE, --key-command CMD or --key-env VAR")
	case n > 1:
		return errors.New("give only one of --barbican-secret, --key-file, --key-command and --key-env")
	}
	return nil
}

func (k *keySource) read() (*keys.Key, error) {
	switch {
	case k.keyEnv != "":
		return keys.FromEnv(k.keyEnv)
	case k.keyCommand != "":
		return keys.FromCommand(context.Background(), k.keyCommand)
	case k.barbican.Secret != "":
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		return keys.FromBarbican(ctx, k.barbican)
	}
	warn := func(msg string) { fmt.Fprintln(os.Stderr, "ssecfs: warning:", msg) }
	return keys.FromFile(k.keyFile, warn)
}

// credentialKey is the key a systemd unit hands over as the credential
// ssecfs-key (LoadCredential=, LoadCredentialEncrypted=), or "".
func credentialKey() string {
	dir := os.Getenv("CREDENTIALS_DIRECTORY")
	if dir == "" {
		return ""
	}
	p := filepath.Join(dir, "ssecfs-key")
	if _, err := os.Stat(p); err != nil {
		return ""
	}
	return p
}
