package api

import (
	"net/http"
	"strconv"

	"github.com/ferry-relay/ferry/apitypes"
	"github.com/ferry-relay/ferry/internal/apikeys"
	"github.com/ferry-relay/ferry/internal/audit"
	"github.com/ferry-relay/ferry/jobs"
)

// publishNowMax is how many re-queued jobs a request publishes itself; the
// sweeper publishes the rest within a second or so (they are recorded as
// not yet published), so re-queuing a million jobs stays one short request.
const publishNowMax = 2000

// requeueRoutes registers POST /v1/jobs/retry: re-queue the FAILED jobs
// matching a filter given as a JSON body or in the query string:
//
//	{"target": "...", "batch": "...", "error": "substring"}   any combination
//	{"all": true}                                              every FAILED job
//
// An empty filter without all=true is refused, so that nobody re-queues
// every failure by leaving out a field. The answer is {"requeued": n}.
func (s *Server) requeueRoutes(mux *http.ServeMux) {
	mux.Handle("POST /v1/jobs/retry", s.auth(apikeys.PermBulk, s.retryJobs))
}

func (s *Server) retryJobs(w http.ResponseWriter, r *http.Request, key apikeys.Key) {
	scope, err := s.scope(r, key)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	q := r.URL.Query()
	req := apitypes.RequeueRequest{RequeueFilter: apitypes.RequeueFilter{
		Target: q.Get("target"), Batch: q.Get("batch"), Error: q.Get("error")}}
	if v := q.Get("all"); v != "" {
		all, err := strconv.ParseBool(v)
		if err != nil {
			writeError(w, http.StatusBadRequest, "bad_request", "all must be true or false")
			return
		}
		req.All = all
	}
	if err := decodeJSON(r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if req.Empty() && !req.All {
		writeError(w, http.StatusBadRequest, "bad_request",
			"name a target, a batch or an error substring, or send all=true to re-queue every FAILED job")
		return
	}
	if !req.Empty() && req.All {
		writeError(w, http.StatusBadRequest, "bad_request", "all=true re-queues every FAILED job: give it without a filter")
		return
	}
	if req.Target != "" {
		if _, err := s.target(key, req.Target); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	s.requeue(w, r, key, scope, audit.ActionJobsRequeue, storeRequeueFilter(req.RequeueFilter))
}

// requeue re-queues the FAILED jobs matching f and answers how many.
func (s *Server) requeue(w http.ResponseWriter, r *http.Request, key apikeys.Key, scope jobs.Scope, action string, f jobs.RequeueFilter) {
	published := 0
	n, err := s.jobs.RequeueFailed(r.Context(), scope, f, func(refs []jobs.Ref) {
		if published >= publishNowMax {
			return
		}
		published += s.enqueue.Enqueue(r.Context(), refs)
	})
	detail := map[string]any{"scope": scope.String(), "target": f.Target, "batch": f.Batch, "error_contains": f.Error, "requeued": n}
	if err != nil {
		if n > 0 {
			// Those re-queued stay so: the sweeper publishes them.
			s.log.Warn("re-queue stopped midway", "requeued", n, "err", err)
			detail["stopped_by_error"] = true
			s.audited(r.Context(), key, action, f.Batch, detail)
		}
		s.fail(w, r, err)
		return
	}
	s.audited(r.Context(), key, action, f.Batch, detail)
	s.log.Info("re-queued failed jobs", "count", n, "target", f.Target, "batch", f.Batch, "error_contains", f.Error)
	writeJSON(w, http.StatusOK, apitypes.RequeueResult{Requeued: n})
}
