// Package api is ferry's HTTP API: uploads in, job status out.
//
// Every route under /v1 needs an API key as a bearer token, but GET
// /v1/openapi.json, the API's OpenAPI 3.1 document. The key's role (admin,
// operator, uploader) must allow the act, and its tenant bounds what it
// sees: another tenant's job is not found (auth.go). /healthz and /readyz
// need no key and say only up or down; /metrics needs Config.MetricsKey
// when one is set, or is served on a listener of its own. Errors are JSON:
// {"error":{"code":"...","message":"..."}}.
package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ferry-relay/ferry/internal/apikeys"
	"github.com/ferry-relay/ferry/internal/audit"
	"github.com/ferry-relay/ferry/internal/coord/rates"
	"github.com/ferry-relay/ferry/jobs"
	"github.com/ferry-relay/ferry/storage"
	"github.com/ferry-relay/ferry/targets"
)

// MaxUploadBytesDefault is the default limit on one file: 5 GiB.
const MaxUploadBytesDefault int64 = 5 << 30

// BodyIdleTimeoutDefault is how long an upload's body may send nothing
// before it is cut.
const BodyIdleTimeoutDefault = 60 * time.Second

// JobStore is what the API needs of the job store.
type JobStore interface {
	RecordRequest(ctx context.Context, req jobs.Request) ([]jobs.Job, bool, error)
	RequestByKey(ctx context.Context, tenant, batch string, apiKeyID int64, key string) (string, []jobs.Job, error)
	BeginUpload(ctx context.Context, key string) error
	KeepUploading(ctx context.Context, keys ...string) error
	EndUpload(ctx context.Context, keys ...string) error
	ExistingIDs(ctx context.Context, ids []string) (map[string]bool, error)
	Get(ctx context.Context, scope jobs.Scope, id string) (jobs.Job, error)
	List(ctx context.Context, scope jobs.Scope, f jobs.Filter) ([]jobs.Job, string, error)
	Attempts(ctx context.Context, scope jobs.Scope, id string) ([]jobs.Attempt, error)
	Retry(ctx context.Context, scope jobs.Scope, id string) (jobs.Job, error)
	Cancel(ctx context.Context, scope jobs.Scope, id string) (jobs.Job, error)
	BatchStore
	DocumentStore
}

// KeyChecker checks API keys.
type KeyChecker interface {
	Check(ctx context.Context, key string) (apikeys.Key, error)
}

// KeyAdmin manages API keys (admins only).
type KeyAdmin interface {
	CreateKey(ctx context.Context, sp apikeys.Spec) (string, apikeys.Info, error)
	List(ctx context.Context) ([]apikeys.Info, error)
	Revoke(ctx context.Context, ref string) (apikeys.Info, error)
}

// AuditTrail records and lists state changes.
type AuditTrail interface {
	Record(ctx context.Context, e audit.Entry) error
	List(ctx context.Context, f audit.Filter) ([]audit.Entry, int64, error)
}

// ObjectStore is what the API needs of object storage.
type ObjectStore interface {
	Put(ctx context.Context, key string, r io.Reader, size, limit int64, contentType string) (storage.Stored, error)
	Remove(ctx context.Context, key string) error
}

// Enqueuer publishes committed jobs; *enqueue.Enqueuer is the one.
type Enqueuer interface {
	Enqueue(ctx context.Context, refs []jobs.Ref) int
	// EnqueueFresh is Enqueue for jobs just recorded by an upload: it
	// marks them later, so that the jobs a worker claims first are
	// never written twice.
	EnqueueFresh(ctx context.Context, refs []jobs.Ref) int
}

// Pinger is a dependency /readyz checks.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Describer is a dependency that can say more than "ok" (the queue: its
// stream's leader and the replicas behind). /readyz logs it and answers
// only "ok"; an error makes the API not ready.
type Describer interface {
	Describe(ctx context.Context) (string, error)
}

// Config configures a Server.
type Config struct {
	// MaxUploadBytes limits one file; MaxUploadBytesDefault if zero.
	MaxUploadBytes int64
	// BodyIdleTimeout cuts an upload whose body sends nothing for that
	// long (its partial file is removed); BodyIdleTimeoutDefault if zero,
	// never if negative.
	BodyIdleTimeout time.Duration
	// RateLimit is the requests per second each API key may make to this
	// process (a token bucket of RateBurst); 0 is no limit.
	RateLimit float64
	// RateBurst is the bucket's size; the rate rounded up when zero.
	RateBurst int
	// MetricsKey, when set, must be sent as a bearer token to read
	// /metrics.
	MetricsKey string
	// NoMetrics leaves /metrics out of the API's routes (it is served on a
	// listener of its own).
	NoMetrics bool
	// MaxConcurrentUploads bounds the uploads received at once;
	// MaxConcurrentUploadsDefault if zero.
	MaxConcurrentUploads int
	// ReportWriteTimeout bounds each write of a streamed report;
	// ReportWriteTimeoutDefault if zero.
	ReportWriteTimeout time.Duration
	// SessionTTL is how long an upload session lives without activity;
	// SessionTTLDefault if zero.
	SessionTTL time.Duration
	// AuthFailureLimit is the invalid API keys per second one client
	// address may send (a token bucket of AuthFailureBurst) before it is
	// answered 429 without a key lookup; AuthFailureLimitDefault if zero,
	// no limit if negative.
	AuthFailureLimit float64
	// AuthFailureBurst is that bucket's size; AuthFailureBurstDefault if
	// zero.
	AuthFailureBurst int
	// UploadLimits share the upload slots between keys and cut slow
	// bodies (limits.go).
	UploadLimits
}

// Server serves the API.
type Server struct {
	cfg     Config
	jobs    JobStore
	keys    KeyChecker
	admin   KeyAdmin
	audit   AuditTrail
	limits  *limiters
	fails   *failedAuths
	uploads *uploadSlots
	objects ObjectStore
	enqueue Enqueuer
	targets targets.Set
	states  TargetStates
	slots   SlotCounter
	rates   TargetRates
	ready   map[string]Pinger
	log     *slog.Logger
	// sessions serves upload sessions; nil when the job store or object
	// storage given cannot keep them (SessionStore, MultipartStore).
	sessions *sessions
}

// TargetRates reports the targets' current request rates (package rates).
type TargetRates interface {
	Current(ctx context.Context) (map[string]rates.State, error)
}

// Deps are the server's collaborators.
type Deps struct {
	Jobs JobStore
	Keys KeyChecker
	// KeyAdmin, when set, serves /v1/apikeys to admins.
	KeyAdmin KeyAdmin
	// Audit, when set, records every state change and serves /v1/audit.
	Audit   AuditTrail
	Objects ObjectStore
	Enqueue Enqueuer
	Targets targets.Set
	// States is where workers share each target's state; nil shows
	// every target ok.
	States TargetStates
	// Slots counts the slots of shared concurrency caps in use; nil
	// leaves in_flight out.
	Slots SlotCounter
	// Rates, when set, adds each paced target's current rate to
	// GET /v1/targets.
	Rates TargetRates
	// Ready are the dependencies /readyz checks, by name.
	Ready map[string]Pinger
	Log   *slog.Logger
}

// New returns a server.
func New(cfg Config, d Deps) *Server {
	if cfg.MaxUploadBytes == 0 {
		cfg.MaxUploadBytes = MaxUploadBytesDefault
	}
	if cfg.BodyIdleTimeout == 0 {
		cfg.BodyIdleTimeout = BodyIdleTimeoutDefault
	}
	if cfg.MaxConcurrentUploads <= 0 {
		cfg.MaxConcurrentUploads = MaxConcurrentUploadsDefault
	}
	if cfg.ReportWriteTimeout <= 0 {
		cfg.ReportWriteTimeout = ReportWriteTimeoutDefault
	}
	for _, name := range d.Targets.Names() {
		uploadedFiles.WithLabelValues(name) // at 0 until the first upload
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = SessionTTLDefault
	}
	cfg.UploadLimits = uploadLimitsWithDefaults(cfg.UploadLimits)
	srv := &Server{cfg: cfg, jobs: d.Jobs, keys: d.Keys, admin: d.KeyAdmin, audit: d.Audit,
		limits: newLimiters(cfg.RateLimit, cfg.RateBurst), fails: newFailedAuths(cfg.AuthFailureLimit, cfg.AuthFailureBurst),
		uploads: newUploadSlots(cfg.MaxConcurrentUploads, cfg.MaxUploadsPerKey), objects: d.Objects, enqueue: d.Enqueue,
		targets: d.Targets, rates: d.Rates, states: d.States, slots: d.Slots, ready: d.Ready, log: d.Log}
	ss, ok1 := d.Jobs.(SessionStore)
	mp, ok2 := d.Objects.(MultipartStore)
	if ok1 && ok2 {
		srv.sessions = &sessions{store: ss, objects: mp}
	}
	return srv
}

// Handler returns the API's routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	if !s.cfg.NoMetrics {
		mux.Handle("GET /metrics", MetricsHandler(s.cfg.MetricsKey))
	}
	mux.HandleFunc("GET /v1/openapi.json", s.openapi)
	mux.Handle("POST /v1/uploads", traced("upload", s.auth(apikeys.PermUpload, s.limitUploads(s.upload))))
	s.sessionRoutes(mux)
	mux.Handle("GET /v1/jobs", s.auth(apikeys.PermRead, s.listJobs))
	mux.Handle("GET /v1/jobs/{id}", s.auth(apikeys.PermRead, s.getJob))
	mux.Handle("GET /v1/jobs/{id}/attempts", s.auth(apikeys.PermRead, s.getAttempts))
	mux.Handle("POST /v1/jobs/{id}/retry", s.auth(apikeys.PermChange, s.retryJob))
	mux.Handle("POST /v1/jobs/{id}/cancel", s.auth(apikeys.PermChange, s.cancelJob))
	mux.Handle("GET /v1/targets", s.auth(apikeys.PermRead, s.listTargets))
	mux.Handle("POST /v1/targets/{name}/resume", s.auth(apikeys.PermProbe, s.resumeTarget))
	s.batchRoutes(mux)
	s.documentRoutes(mux)
	s.dashboardRoutes(mux)
	s.requeueRoutes(mux)
	s.adminRoutes(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no such route: "+r.Method+" "+r.URL.Path)
	})
	return instrument(mux)
}

func bearer(h string) (string, bool) {
	const p = "Bearer "
	if len(h) <= len(p) || !strings.EqualFold(h[:len(p)], p) {
		return "", false
	}
	return h[len(p):], true
}

// readyz answers ok or down per component. Without a key that is all it
// says (a host name or an error could help an attacker); to a request with
// an admin key it also gives each component's details under "details":
// the queue's stream leader and the replicas behind, or why a component is
// down.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	status := map[string]any{}
	details := map[string]string{}
	code := http.StatusOK
	for name, p := range s.ready {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		err := p.Ping(ctx)
		cancel()
		if err != nil {
			s.log.Warn("not ready", "component", name, "err", err)
			status[name], details[name] = "down", err.Error()
			code = http.StatusServiceUnavailable
			continue
		}
		status[name], details[name] = "ok", "ok"
		if d, ok := p.(Describer); ok {
			ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
			desc, err := d.Describe(ctx)
			cancel()
			if err != nil {
				s.log.Warn("not ready", "component", name, "err", err)
				status[name], details[name] = "down", err.Error()
				code = http.StatusServiceUnavailable
				continue
			}
			details[name] = desc
			s.log.Debug("ready", "component", name, "state", desc)
		}
	}
	if _, ok := bearer(r.Header.Get("Authorization")); ok {
		if key, err := s.Authenticate(r); err == nil && key.Can(apikeys.PermAdmin) {
			status["details"] = details
		}
	}
	writeJSON(w, code, status)
}

// MetricsHandler serves the Prometheus metrics; with a key, only to a
// request bearing it.
func MetricsHandler(key string) http.Handler {
	h := promhttp.Handler()
	if key == "" {
		return h
	}
	want := sha256.Sum256([]byte(key))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ := bearer(r.Header.Get("Authorization"))
		sum := sha256.Sum256([]byte(got))
		if subtle.ConstantTimeCompare(sum[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="ferry metrics"`)
			writeError(w, http.StatusUnauthorized, "unauthorized", "metrics need the metrics key as a bearer token")
			return
		}
		h.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}
