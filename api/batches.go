package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"

	"github.com/ferry-relay/ferry/apitypes"
	"github.com/ferry-relay/ferry/internal/apikeys"
	"github.com/ferry-relay/ferry/internal/audit"
	"github.com/ferry-relay/ferry/jobs"
)

// BatchStore is what the API needs of the job store for batches.
type BatchStore interface {
	ByBatchKey(ctx context.Context, tenant, batch, key string) (jobs.Job, error)
	CreateBatch(ctx context.Context, b jobs.Batch, apiKeyID int64) (jobs.Batch, bool, error)
	Batch(ctx context.Context, tenant, name string) (jobs.Batch, error)
	BatchSummary(ctx context.Context, tenant, name string) (jobs.BatchSummary, error)
	ListBatches(ctx context.Context, scope jobs.Scope, cursor string, limit int) (jobs.BatchPage, error)
	Report(ctx context.Context, tenant, batch string, status jobs.Status, fn func(jobs.ReportRow) error) error
	BatchKeys(ctx context.Context, tenant, batch string, fn func(key string) error) error
	RequeueFailed(ctx context.Context, scope jobs.Scope, f jobs.RequeueFilter, chunk func([]jobs.Ref)) (int, error)
	DashboardStore
}

// maxJSONBody bounds the JSON body of a request that is not an upload.
const maxJSONBody = 1 << 20

// batchRoutes registers the batch API:
//
//	POST /v1/batches                      create a batch (name, target, params)
//	GET  /v1/batches                      list batches with their summaries
//	GET  /v1/batches/{name}               the summary: counts and bytes by status, rate, ETA
//	GET  /v1/batches/{name}/report        one row per file (?format=csv|json, ?status=)
//	GET  /v1/batches/{name}/keys          the idempotency keys accepted, one per line
//	POST /v1/batches/{name}/retry         re-queue the FAILED jobs (?error=, ?error_group= or {"error":..., "error_group":...})
//	POST /v1/targets/{name}/check         would uploads with these params be accepted?
func (s *Server) batchRoutes(mux *http.ServeMux) {
	mux.Handle("POST /v1/batches", s.auth(apikeys.PermUpload, s.createBatch))
	mux.Handle("GET /v1/batches", s.auth(apikeys.PermRead, s.listBatches))
	mux.Handle("GET /v1/batches/{name}", s.auth(apikeys.PermRead, s.getBatch))
	mux.Handle("GET /v1/batches/{name}/report", s.auth(apikeys.PermRead, s.batchReport))
	mux.Handle("GET /v1/batches/{name}/keys", s.auth(apikeys.PermRead, s.batchKeys))
	mux.Handle("POST /v1/batches/{name}/retry", s.auth(apikeys.PermBulk, s.retryBatch))
	mux.Handle("POST /v1/targets/{name}/check", s.auth(apikeys.PermRead, s.checkTarget))
}

// decodeJSON reads a small JSON body into v, refusing unknown fields. An
// empty body leaves v as it is.
func decodeJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxJSONBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		return badRequest("malformed JSON body: %v", err)
	}
	if field := nulField(v); field != "" {
		return badRequest("%s holds a NUL byte", field)
	}
	return nil
}

func (s *Server) createBatch(w http.ResponseWriter, r *http.Request, key apikeys.Key) {
	var in apitypes.Batch
	if err := decodeJSON(r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	b := jobs.Batch{Name: in.Name, Target: in.Target, Params: in.Params}
	if err := apitypes.CheckBatchName(b.Name); err != nil {
		s.fail(w, r, badRequest("%v", err))
		return
	}
	if in.Tenant != "" && in.Tenant != key.Tenant {
		s.fail(w, r, otherTenant(key))
		return
	}
	b.Tenant = key.Tenant
	if _, err := s.target(key, b.Target); err != nil {
		s.fail(w, r, err)
		return
	}
	out, created, err := s.jobs.CreateBatch(r.Context(), b, key.ID)
	switch {
	case err != nil:
		s.fail(w, r, err)
	case created:
		s.audited(r.Context(), key, audit.ActionBatchCreate, out.Name, map[string]any{"target": out.Target, "params": out.Params})
		w.Header().Set("Location", wireBatch(out).URL)
		writeJSON(w, http.StatusCreated, wireBatch(out))
	default:
		writeJSON(w, http.StatusOK, wireBatch(out))
	}
}

func (s *Server) listBatches(w http.ResponseWriter, r *http.Request, key apikeys.Key) {
	scope, err := s.scope(r, key)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p, err := parsePage(r.URL.Query(), maxBatchesPage)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	page, err := s.jobs.ListBatches(r.Context(), scope, p.cursor, p.limit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, wireBatchPage(page))
}

func (s *Server) getBatch(w http.ResponseWriter, r *http.Request, key apikeys.Key) {
	tenant, err := s.tenantOf(r, key)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	sum, err := s.jobs.BatchSummary(r.Context(), tenant, r.PathValue("name"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, wireSummary(sum))
}

func (s *Server) retryBatch(w http.ResponseWriter, r *http.Request, key apikeys.Key) {
	name := r.PathValue("name")
	tenant, err := s.tenantOf(r, key)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	f := jobs.RequeueFilter{Error: r.URL.Query().Get("error")}
	var body apitypes.BatchRetryRequest
	if err := decodeJSON(r, &body); err != nil {
		s.fail(w, r, err)
		return
	}
	if body.Error != "" {
		f.Error = body.Error
	}
	f.ErrorGroup = body.ErrorGroup
	if v, ok := r.URL.Query()["error_group"]; ok && f.ErrorGroup == nil {
		f.ErrorGroup = &v[0]
	}
	if _, err := s.jobs.BatchSummary(r.Context(), tenant, name); err != nil {
		s.fail(w, r, err)
		return
	}
	f.Batch = name
	s.requeue(w, r, key, jobs.InTenant(tenant), audit.ActionBatchRequeue, f)
}

// checkTarget runs the target's own checks on parameters (and a size)
// without uploading: push --dry-run uses it.
func (s *Server) checkTarget(w http.ResponseWriter, r *http.Request, key apikeys.Key) {
	var req apitypes.CheckRequest
	if err := decodeJSON(r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	form := uploadForm{key: key, target: r.PathValue("name"), batch: req.Batch, params: map[string]string{}}
	maps.Copy(form.params, req.Params)
	if err := s.applyBatch(r.Context(), &form); err != nil {
		s.fail(w, r, err)
		return
	}
	t, err := s.target(key, form.target)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	params := form.merged(t)
	if err := checkParams(t, params); err != nil {
		s.fail(w, r, err)
		return
	}
	if req.Size != nil {
		if err := checkSize(t, "", *req.Size); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, apitypes.CheckResult{OK: true, Target: t.Name, Params: params})
}
