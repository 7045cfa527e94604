package store

import (
	"errors"
	"testing"

	"github.com/minio/minio-go/v7"
)

// A 403 RequestTimeTooSkewed (the clock jumped, as after a laptop's sleep)
// is retried as a network failure; other 403s are refusals.
func TestAClockSkewIsTransientOtherRefusalsAreNot(t *testing.T) {
	skew := classify(minio.ErrorResponse{StatusCode: 403, Code: "RequestTimeTooSkewed"}, "put \"k\"")
	if !errors.Is(skew, ErrUnavailable) {
		t.Errorf("RequestTimeTooSkewed: %v, want ErrUnavailable", skew)
	}
	denied := classify(minio.ErrorResponse{StatusCode: 403, Code: "AccessDenied"}, "put \"k\"")
	if !errors.Is(denied, ErrAccessDenied) || errors.Is(denied, ErrUnavailable) {
		t.Errorf("AccessDenied: %v, want ErrAccessDenied only", denied)
	}
}
