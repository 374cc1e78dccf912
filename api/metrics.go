package api

import (
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
		Help: "Uploads refused with 503 because FERRY_MAX_CONCURRENT_UPLOADS were in progress.",
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
)
