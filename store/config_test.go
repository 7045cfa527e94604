package store

import (
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
