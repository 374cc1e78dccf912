// Package api is ferry's HTTP API: uploads in, job status out.
//
// Every route under /v1 needs an API key as a bearer token, but GET
// /v1/openapi.json, the API's OpenAPI 3.1 document. /healthz, /readyz and
// /metrics need none either. Errors are JSON:
// {"error":{"code":"...","message":"..."}}.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ferry-relay/ferry/apikeys"
	"github.com/ferry-relay/ferry/apitypes"
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
	RequestByKey(ctx context.Context, batch string, apiKeyID int64, key string) (string, []jobs.Job, error)
	BeginUpload(ctx context.Context, key string) error
	KeepUploading(ctx context.Context, keys ...string) error
	EndUpload(ctx context.Context, keys ...string) error
	Get(ctx context.Context, id string) (jobs.Job, error)
	List(ctx context.Context, f jobs.Filter) ([]jobs.Job, string, error)
	Attempts(ctx context.Context, id string) ([]jobs.Attempt, error)
	Retry(ctx context.Context, id string) (jobs.Job, error)
	Cancel(ctx context.Context, id string) (jobs.Job, error)
	BatchStore
}

// KeyChecker checks API keys.
type KeyChecker interface {
	Check(ctx context.Context, key string) (apikeys.Key, error)
}

// ObjectStore is what the API needs of object storage.
type ObjectStore interface {
	Put(ctx context.Context, key string, r io.Reader, size, limit int64, contentType string) (storage.Stored, error)
	Remove(ctx context.Context, key string) error
}

// Enqueuer publishes committed jobs; *jobs.Enqueuer is the one.
type Enqueuer interface {
	Enqueue(ctx context.Context, refs []jobs.Ref) int
}

// Pinger is a dependency /readyz checks.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Config configures a Server.
type Config struct {
	// MaxUploadBytes limits one file; MaxUploadBytesDefault if zero.
	MaxUploadBytes int64
	// BodyIdleTimeout cuts an upload whose body sends nothing for that
	// long (its partial file is removed); BodyIdleTimeoutDefault if zero,
	// never if negative.
	BodyIdleTimeout time.Duration
}

// Server serves the API.
type Server struct {
	cfg     Config
	jobs    JobStore
	keys    KeyChecker
	objects ObjectStore
	enqueue Enqueuer
	targets targets.Set
	states  TargetStates
	slots   SlotCounter
	ready   map[string]Pinger
	log     *slog.Logger
}

// Deps are the server's collaborators.
type Deps struct {
	Jobs    JobStore
	Keys    KeyChecker
	Objects ObjectStore
	Enqueue Enqueuer
	Targets targets.Set
	// States is where workers share each target's state; nil shows
	// every target ok.
	States TargetStates
	// Slots counts the slots of shared concurrency caps in use; nil
	// leaves in_flight out.
	Slots SlotCounter
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
	return &Server{cfg: cfg, jobs: d.Jobs, keys: d.Keys, objects: d.Objects, enqueue: d.Enqueue,
		targets: d.Targets, states: d.States, slots: d.Slots, ready: d.Ready, log: d.Log}
}

// Handler returns the API's routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /metrics", promhttp.Handler())
	mux.HandleFunc("GET /v1/openapi.json", s.openapi)
	mux.Handle("POST /v1/uploads", s.auth(s.upload))
	mux.Handle("GET /v1/jobs", s.auth(s.listJobs))
	mux.Handle("GET /v1/jobs/{id}", s.auth(s.getJob))
	mux.Handle("GET /v1/jobs/{id}/attempts", s.auth(s.getAttempts))
	mux.Handle("POST /v1/jobs/{id}/retry", s.auth(s.retryJob))
	mux.Handle("POST /v1/jobs/{id}/cancel", s.auth(s.cancelJob))
	mux.Handle("GET /v1/targets", s.auth(s.listTargets))
	mux.Handle("POST /v1/targets/{name}/resume", s.auth(s.resumeTarget))
	s.batchRoutes(mux)
	s.requeueRoutes(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no such route: "+r.Method+" "+r.URL.Path)
	})
	return instrument(mux)
}

// auth requires a valid API key.
func (s *Server) auth(h func(http.ResponseWriter, *http.Request, apikeys.Key)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := bearer(r.Header.Get("Authorization"))
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="ferry"`)
			writeError(w, http.StatusUnauthorized, "unauthorized", "missing API key: send Authorization: Bearer <key>")
			return
		}
		key, err := s.keys.Check(r.Context(), token)
		if errors.Is(err, apikeys.ErrInvalid) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="ferry", error="invalid_token"`)
			writeError(w, http.StatusUnauthorized, "unauthorized", "invalid API key")
			return
		}
		if err != nil {
			s.internal(w, r, err)
			return
		}
		h(w, r, key)
	})
}

func bearer(h string) (string, bool) {
	const p = "Bearer "
	if len(h) <= len(p) || !equalFold(h[:len(p)], p) {
		return "", false
	}
	return h[len(p):], true
}

func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range len(a) {
		ca, cb := a[i]|0x20, b[i]|0x20
		if ca != cb {
			return false
		}
	}
	return true
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	status := map[string]string{}
	code := http.StatusOK
	for name, p := range s.ready {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		err := p.Ping(ctx)
		cancel()
		if err != nil {
			status[name] = "down: " + err.Error()
			code = http.StatusServiceUnavailable
			continue
		}
		status[name] = "ok"
	}
	writeJSON(w, code, status)
}

// internal answers 500 and logs the cause, which the client never sees.
func (s *Server) internal(w http.ResponseWriter, r *http.Request, err error) {
	s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	writeError(w, http.StatusInternalServerError, "internal", "internal error; see the server log")
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, errCode, msg string) {
	writeJSON(w, code, apitypes.Error{Error: apitypes.ErrorDetail{Code: errCode, Message: msg}})
}
