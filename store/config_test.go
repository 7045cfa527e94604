package store

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// --allow-http lets plain HTTP through to this machine only: SSE-C sends
// the key with every request.
func TestAllowHTTPIsForLoopbackEndpointsOnly(t *testing.T) {
	for endpoint, ok := range map[string]bool{
		"http://127.0.0.1:9000": true, "http://localhost:9000": true, "http://[::1]:9000": true,
		"http://s3.example.net": false, "http://10.0.0.5:7480": false, "http://127.0.0.1.example.net": false,
	} {
		_, err := resolve(Config{Bucket: "b", Endpoint: endpoint, AllowHTTP: true})
		if ok && err != nil {
			t.Errorf("%s with --allow-http: %v", endpoint, err)
		}
		if !ok && (err == nil || !strings.Contains(err.Error(), "this machine only")) {
			t.Errorf("%s with --allow-http: %v, want a refusal", endpoint, err)
		}
	}
	if _, err := resolve(Config{Bucket: "b", Endpoint: "http://127.0.0.1:9000"}); err == nil {
		t.Error("plain HTTP without --allow-http was accepted")
	}
}

// A profile asked for by name that neither AWS file has is refused by
// name, as aws refuses it, instead of falling back to other credentials.
func TestAMissingAWSProfileIsNamed(t *testing.T) {
	dir := t.TempDir()
	config, creds := filepath.Join(dir, "config"), filepath.Join(dir, "credentials")
	os.WriteFile(config, []byte("[profile inconfig]\nregion = eu-west-1\n"), 0o600)
	os.WriteFile(creds, []byte("[increds]\naws_access_key_id = A\naws_secret_access_key = B\n"), 0o600)
	t.Setenv("AWS_CONFIG_FILE", config)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", creds)
	t.Setenv("AWS_PROFILE", "")
	for _, p := range []string{"inconfig", "increds", ""} {
		if _, err := resolve(Config{Bucket: "b", Profile: p, Endpoint: "https://s3.example.net"}); err != nil {
			t.Errorf("profile %q: %v", p, err)
		}
	}
	_, err := resolve(Config{Bucket: "b", Profile: "typo", Endpoint: "https://s3.example.net"})
	if err == nil || !strings.Contains(err.Error(), `AWS profile "typo" not found`) || !strings.Contains(err.Error(), config) {
		t.Fatalf("a missing profile: %v", err)
	}
	t.Setenv("AWS_PROFILE", "typo2")
	if _, err := resolve(Config{Bucket: "b", Endpoint: "https://s3.example.net"}); err == nil || !strings.Contains(err.Error(), `"typo2"`) {
		t.Fatalf("a missing AWS_PROFILE: %v", err)
	}
}
