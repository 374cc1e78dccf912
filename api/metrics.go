package api

import (
	"cmp"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/ferry-relay/ferry/jobs"
)

var (
	requestsTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "ferry_http_requests_total",
		Help: "HTTP requests to the API by route and status code.",
	}, []string{"route", "code"})
	requestSeconds = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "ferry_http_request_duration_seconds",
		Help:    "Duration of HTTP requests to the API by route.",
		Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
	}, []string{"route"})
	uploadedBytes = promauto.NewCounter(prometheus.CounterOpts{
		Name: "ferry_uploaded_bytes_total",
		Help: "Bytes of files accepted by the API.",
	})
	uploadedFiles = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "ferry_uploaded_files_total",
		Help: "Files accepted by the API, by target.",
	}, []string{"target"})
	documentVersions = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "ferry_document_versions_total",
		Help: "Uploads naming a document, by target and what they were: new (a new version), unchanged (the latest version holds the content: nothing recorded), requeued (the latest version held it and had failed: queued again).",
	}, []string{"target", "outcome"})
)

// countVersion counts an upload of a document by what recording made of it.
func countVersion(target string, r jobs.Recorded) {
	outcome := "new"
	switch r {
	case jobs.RecordedUnchanged:
		outcome = "unchanged"
	case jobs.RecordedRequeued:
		outcome = "requeued"
	}
	documentVersions.WithLabelValues(target, outcome).Inc()
}

type statusRecorder struct {
	http.ResponseWriter
	code int
	// errCode is the error code writeError answered with, if any.
	errCode string
}

func (r *statusRecorder) WriteHeader(code int) {
	r.code = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// instrument counts requests by the route pattern that served them.
func instrument(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		mux.ServeHTTP(rec, r)
		route := r.Pattern
		if route == "" || route == "/" {
			route = "other"
		}
		requestsTotal.WithLabelValues(route, strconv.Itoa(rec.code)).Inc()
		if route == uploadPattern && rec.code >= 400 {
			uploadsRefused.WithLabelValues(cmp.Or(rec.errCode, strconv.Itoa(rec.code))).Inc()
		}
		requestSeconds.WithLabelValues(route).Observe(time.Since(start).Seconds())
	})
}

var (
	rateLimited = promauto.NewCounter(prometheus.CounterOpts{
		Name: "ferry_http_rate_limited_total",
		Help: "Requests refused with 429 because their API key was over FERRY_RATE_LIMIT.",
	})
	busyUploads = promauto.NewCounter(prometheus.CounterOpts{
		Name: "ferry_uploads_refused_busy_total",
		Help: "Uploads refused with 503 because FERRY_MAX_CONCURRENT_UPLOADS were in progress, or their key held its share of them.",
	})
)

var (
	sessionPartBytes = promauto.NewCounter(prometheus.CounterOpts{
		Name: "ferry_upload_session_part_bytes_total",
		Help: "Bytes received in the parts of upload sessions, parts sent again included.",
	})
	sessionReadBackBytes = promauto.NewCounter(prometheus.CounterOpts{
		Name: "ferry_upload_session_readback_bytes_total",
		Help: "Bytes read back to prove a session's SHA-256 when its parts carried no hash chain.",
	})
	uploadsRefused = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "ferry_uploads_refused_total",
		Help: "Uploads (POST /v1/uploads) answered with an error, by its code: busy, rate_limited, too_large, unknown_target, unauthorized, forbidden, bad_request, idempotency_key_reused, internal.",
	}, []string{"reason"})
)

// uploadPattern is the route whose refusals ferry_uploads_refused_total
// counts: Handler's pattern for uploads (a literal there, which the
// OpenAPI test reads).
const uploadPattern = "POST /v1/uploads"

func init() {
	// The usual reasons start at 0, so that a rate over them is defined
	// before the first refusal.
	for _, r := range []string{"busy", "rate_limited", "too_large", "unknown_target", "unauthorized",
		"forbidden", "bad_request", "idempotency_key_reused", "internal"} {
		uploadsRefused.WithLabelValues(r)
	}
}

// noteErrorCode tells the statusRecorder under w which error code the
// answer carries.
func noteErrorCode(w http.ResponseWriter, code string) {
	for {
		switch rw := w.(type) {
		case *statusRecorder:
			rw.errCode = code
			return
		case interface{ Unwrap() http.ResponseWriter }:
			w = rw.Unwrap()
		default:
			return
		}
	}
}
