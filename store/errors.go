package store

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"

	"github.com/minio/minio-go/v7"
)

// statusOf returns the HTTP status of an S3 error answer, or 0 when the
// error did not come from an answer (network, TLS, context).
func statusOf(err error) int {
	var er minio.ErrorResponse
	if errors.As(err, &er) {
		return er.StatusCode
	}
	return 0
}

// classify turns an error from minio-go into one wrapping a sentinel error.
// It is the only place that knows S3 error codes. what names the operation
// and object for the message; the server's own words are kept after it.
func classify(err error, what string) error {
	if err == nil {
		return nil
	}
	var off *offlineError
	if errors.As(err, &off) {
		return fmt.Errorf("%s: %w", what, off)
	}
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("%s: %w", what, err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		// No answer in time: the server is unavailable, and the errno
		// says it timed out (fs/errno.go).
		return fmt.Errorf("%s: %w: %w", what, ErrUnavailable, err)
	}
	var er minio.ErrorResponse
	if errors.As(err, &er) {
		var sentinel error
		switch {
		case er.Code == "NoSuchBucket":
			sentinel = ErrNoBucket
		case er.StatusCode == 404:
			sentinel = ErrNotFound
		case er.StatusCode == 412:
			sentinel = ErrChanged
		case er.Code == "RequestTimeTooSkewed":
			// The clock jumped (a laptop waking from sleep) or drifts: the
			// next request, signed with the time then, may pass. Retried as
			// a network failure, not refused for good.
			sentinel = ErrUnavailable
		case er.Code == "InvalidAccessKeyId" || er.Code == "SignatureDoesNotMatch" ||
			er.Code == "InvalidToken" || er.Code == "ExpiredToken":
			sentinel = ErrBadCredentials
		case er.StatusCode == 403:
			sentinel = ErrAccessDenied
		case er.StatusCode >= 500:
			sentinel = ErrUnavailable
		}
		if sentinel != nil {
			return fmt.Errorf("%s: %w (%d %s)", what, sentinel, er.StatusCode, er.Code)
		}
		return fmt.Errorf("%s: %d %s %s", what, er.StatusCode, er.Code, er.Message)
	}
	var (
		cve  *tls.CertificateVerificationError
		ua   x509.UnknownAuthorityError
		he   x509.HostnameError
		cie  x509.CertificateInvalidError
		rhe  tls.RecordHeaderError
		nerr net.Error
	)
	switch {
	case errors.As(err, &cve), errors.As(err, &ua), errors.As(err, &he), errors.As(err, &cie):
		return fmt.Errorf("%s: %w: %v", what, ErrInsecure, err)
	case errors.As(err, &rhe):
		return fmt.Errorf("%s: %w: the endpoint does not speak TLS", what, ErrUnavailable)
	case errors.As(err, &nerr):
		return fmt.Errorf("%s: %w: %v", what, ErrUnavailable, err)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		// A connection cut before or during the answer: retried like
		// any network error.
		return fmt.Errorf("%s: %w: %v", what, ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}
