package api

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ferry-relay/ferry/apitypes"
	"github.com/ferry-relay/ferry/internal/apikeys"
	"github.com/ferry-relay/ferry/internal/audit"
	"github.com/ferry-relay/ferry/jobs"
	"github.com/ferry-relay/ferry/targets"
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
	return nil
}

func (s *Server) createBatch(w http.ResponseWriter, r *http.Request, key apikeys.Key) {
	var in apitypes.Batch
	if err := decodeJSON(r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	b := jobs.Batch{Name: in.Name, Target: in.Target, Params: in.Params}
	if err := jobs.CheckBatchName(b.Name); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	for k, v := range b.Params {
		if strings.ContainsRune(k+v, 0) {
			writeError(w, http.StatusBadRequest, "bad_request", "parameter "+strconv.Quote(k)+": names and values must not hold NUL")
			return
		}
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
	case errors.Is(err, jobs.ErrBatchExists):
		writeError(w, http.StatusConflict, "conflict", err.Error())
	case err != nil:
		s.internal(w, r, err)
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
	q := r.URL.Query()
	limit := 0
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			writeError(w, http.StatusBadRequest, "bad_request", "limit must be between 1 and 100")
			return
		}
		limit = n
	}
	page, err := s.jobs.ListBatches(r.Context(), scope, q.Get("cursor"), limit)
	if err != nil {
		s.internal(w, r, err)
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
		s.batchError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, wireSummary(sum))
}

// batchReport streams one row per job of the batch as CSV or JSON. Rows
// are written as they are read: a report of a million files never sits in
// memory. A failure midway aborts the response, so a client never takes a
// truncated report for a whole one.
func (s *Server) batchReport(w http.ResponseWriter, r *http.Request, key apikeys.Key) {
	name := r.PathValue("name")
	tenant, err := s.tenantOf(r, key)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	q := r.URL.Query()
	format := q.Get("format")
	if format == "" {
		format = "csv"
	}
	if format != "csv" && format != "json" {
		writeError(w, http.StatusBadRequest, "bad_request", "format must be csv or json")
		return
	}
	status := jobs.Status(q.Get("status"))
	if status != "" && !status.Valid() {
		writeError(w, http.StatusBadRequest, "bad_request", "unknown status "+strconv.Quote(string(status)))
		return
	}
	if _, err := s.jobs.BatchSummary(r.Context(), tenant, name); err != nil {
		s.batchError(w, r, err)
		return
	}
	var write func(jobs.ReportRow) error
	var end func() error
	dw := newDeadlineWriter(w, s.cfg.ReportWriteTimeout)
	defer dw.done()
	w = dw
	switch format {
	case "csv":
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="report.csv"`)
		cw := csv.NewWriter(w)
		_ = cw.Write([]string{"path", "job_id", "status", "attempts", "remote_id", "sha256", "size", "last_error", "finished_at"})
		write = func(row jobs.ReportRow) error {
			finished := ""
			if row.FinishedAt != nil {
				finished = row.FinishedAt.UTC().Format(time.RFC3339)
			}
			return cw.Write([]string{csvSafe(row.Path), row.JobID, string(row.Status), strconv.Itoa(row.Attempts),
				csvSafe(row.RemoteID), row.SHA256, strconv.FormatInt(row.Size, 10), csvSafe(row.LastError), finished})
		}
		end = func() error { cw.Flush(); return cw.Error() }
	case "json":
		// A JSON array, one row per line.
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		sep := "[\n"
		write = func(row jobs.ReportRow) error {
			if _, err := io.WriteString(w, sep); err != nil {
				return err
			}
			sep = ","
			return enc.Encode(wireReportRow(row))
		}
		end = func() error {
			if sep == "[\n" {
				_, err := io.WriteString(w, "[]\n")
				return err
			}
			_, err := io.WriteString(w, "]\n")
			return err
		}
	}
	w.WriteHeader(http.StatusOK)
	err = s.jobs.Report(r.Context(), tenant, name, status, write)
	if err == nil {
		err = end()
	}
	if err != nil {
		s.abort(r, err)
	}
}

// batchKeys streams the idempotency keys of the batch's jobs, one per
// line.
func (s *Server) batchKeys(w http.ResponseWriter, r *http.Request, key apikeys.Key) {
	name := r.PathValue("name")
	tenant, err := s.tenantOf(r, key)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if _, err := s.jobs.BatchSummary(r.Context(), tenant, name); err != nil {
		s.batchError(w, r, err)
		return
	}
	dw := newDeadlineWriter(w, s.cfg.ReportWriteTimeout)
	defer dw.done()
	w = dw
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	err = s.jobs.BatchKeys(r.Context(), tenant, name, func(k string) error {
		_, err := io.WriteString(w, k+"\n")
		return err
	})
	if err != nil {
		s.abort(r, err)
	}
}

// abort ends a response that has started: the client sees a broken
// transfer, not a short answer it could take for complete.
func (s *Server) abort(r *http.Request, err error) {
	if r.Context().Err() == nil {
		s.log.Error("streaming response failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	panic(http.ErrAbortHandler)
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
		s.batchError(w, r, err)
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

// applyBatch fills the upload's target and default parameters from the
// batch object it names. A batch name without an object is a plain label
// and changes nothing.
func (s *Server) applyBatch(ctx context.Context, form *uploadForm) error {
	if form.batch == "" {
		return nil
	}
	if form.batchApplied {
		// A target field may have come after the batch's was applied.
		if form.batchTarget != "" && form.target != form.batchTarget {
			return batchMismatch(form.batch, form.batchTarget, form.target)
		}
		return nil
	}
	if len(form.batch) > jobs.MaxBatchName {
		return badRequest("batch name is longer than %d bytes", jobs.MaxBatchName)
	}
	b, err := s.jobs.Batch(ctx, form.key.Tenant, form.batch)
	if errors.Is(err, jobs.ErrBatchNotFound) {
		form.batchApplied = true
		return nil
	}
	if err != nil {
		return err
	}
	form.batchApplied = true
	switch {
	case form.target == "":
		form.target = b.Target
	case form.target != b.Target:
		return batchMismatch(b.Name, b.Target, form.target)
	}
	form.batchParams, form.batchTarget = b.Params, b.Target
	return nil
}

func batchMismatch(batch, want, got string) error {
	return &apiError{http.StatusUnprocessableEntity, "batch_target_mismatch",
		fmt.Sprintf("batch %q delivers to target %s, not %s", batch, want, got)}
}

// merged returns the upload's parameters over the batch's over the
// target's defaults.
func (f *uploadForm) merged(t *targets.Target) map[string]string {
	p := maps.Clone(f.batchParams)
	if p == nil {
		p = map[string]string{}
	}
	maps.Copy(p, f.params)
	return t.MergeParams(p)
}

// checkParams runs the target's parameter check, if it has one.
func checkParams(t *targets.Target, params map[string]string) error {
	if pc, ok := t.Deliverer.(targets.ParamChecker); ok {
		if err := pc.CheckParams(params); err != nil {
			return &apiError{http.StatusUnprocessableEntity, "invalid_params",
				fmt.Sprintf("target %s: %v", t.Name, err)}
		}
	}
	return nil
}

// checkSize refuses a file over the target's size limit, if it has one.
func checkSize(t *targets.Target, filename string, size int64) error {
	sl, ok := t.Deliverer.(targets.SizeLimiter)
	if !ok {
		return nil
	}
	if lim := sl.MaxFileBytes(); lim > 0 && size > lim {
		what := "file"
		if filename != "" {
			what = fmt.Sprintf("file %q", filename)
		}
		return &apiError{http.StatusRequestEntityTooLarge, "too_large",
			fmt.Sprintf("%s is %d bytes, over target %s's limit of %d", what, size, t.Name, lim)}
	}
	return nil
}

// fail answers err: its own status for an *apiError, 500 otherwise.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var ae *apiError
	if errors.As(err, &ae) {
		writeError(w, ae.status, ae.code, ae.msg)
		return
	}
	s.internal(w, r, err)
}

func (s *Server) batchError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, jobs.ErrBatchNotFound) {
		writeError(w, http.StatusNotFound, "not_found", "no batch named "+strconv.Quote(r.PathValue("name")))
		return
	}
	s.internal(w, r, err)
}
