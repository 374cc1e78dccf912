package storage

import (
	"context"
	"errors"
	"net/url"
	"syscall"
	"testing"

	"github.com/minio/minio-go/v7"
)

// A failed GET is about the object (missing: ErrNotFound; a failed
// If-Match or range: neither) or about storage (ErrUnavailable), and
// nothing is known of storage once the caller's context has ended.
func TestGetErrorTellsObjectFromStorage(t *testing.T) {
	refused := &url.Error{Op: "Get", URL: "http://127.0.0.1:9/b/k", Err: syscall.ECONNREFUSED}
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name     string
		ctx      context.Context
		err      error
		notFound bool
		down     bool
	}{
		{"no such key", context.Background(), minio.ErrorResponse{Code: "NoSuchKey", StatusCode: 404}, true, false},
		{"404 without a code", context.Background(), minio.ErrorResponse{StatusCode: 404}, true, false},
		{"no such bucket", context.Background(), minio.ErrorResponse{Code: "NoSuchBucket", StatusCode: 404}, false, true},
		{"503", context.Background(), minio.ErrorResponse{Code: "ServiceUnavailable", StatusCode: 503}, false, true},
		{"500", context.Background(), minio.ErrorResponse{Code: "InternalError", StatusCode: 500}, false, true},
		{"slow down", context.Background(), minio.ErrorResponse{Code: "SlowDown", StatusCode: 503}, false, true},
		{"keys refused", context.Background(), minio.ErrorResponse{Code: "InvalidAccessKeyId", StatusCode: 403}, false, true},
		{"if-match failed", context.Background(), minio.ErrorResponse{Code: "PreconditionFailed", StatusCode: 412}, false, false},
		{"bad range", context.Background(), minio.ErrorResponse{Code: "InvalidRange", StatusCode: 416}, false, false},
		{"connection refused", context.Background(), refused, false, true},
		{"connection refused, caller gone", ended, refused, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := getError(tc.ctx, "objects/x", tc.err)
			if got := errors.Is(err, ErrNotFound); got != tc.notFound {
				t.Errorf("%v: ErrNotFound %v, want %v", err, got, tc.notFound)
			}
			if got := errors.Is(err, ErrUnavailable); got != tc.down {
				t.Errorf("%v: ErrUnavailable %v, want %v", err, got, tc.down)
			}
			if !tc.notFound && !errors.Is(err, tc.err) {
				t.Errorf("%v does not wrap %v", err, tc.err)
			}
		})
	}
}
