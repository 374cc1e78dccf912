package api

import (
	"net/http"
	"strconv"

	"github.com/ferry-relay/ferry/apitypes"
	"github.com/ferry-relay/ferry/internal/apikeys"
	"github.com/ferry-relay/ferry/internal/audit"
	"github.com/ferry-relay/ferry/jobs"
)

func (s *Server) getJob(w http.ResponseWriter, r *http.Request, key apikeys.Key) {
	scope, err := s.scope(r, key)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	job, err := s.jobs.Get(r.Context(), scope, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, wireJob(job))
}

func (s *Server) getAttempts(w http.ResponseWriter, r *http.Request, key apikeys.Key) {
	scope, err := s.scope(r, key)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	as, err := s.jobs.Attempts(r.Context(), scope, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, apitypes.AttemptList{Attempts: wireAttempts(as)})
}

func (s *Server) listJobs(w http.ResponseWriter, r *http.Request, key apikeys.Key) {
	scope, err := s.scope(r, key)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	q := r.URL.Query()
	p, err := parsePage(q, maxJobsPage)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	f := jobs.Filter{Status: jobs.Status(q.Get("status")), Target: q.Get("target"), Batch: q.Get("batch"),
		FilenameContains: q.Get("filename"), Cursor: p.cursor, Limit: p.limit}
	switch v := q.Get("uncertain"); v {
	case "", "false":
	case "true":
		f.Uncertain = true
	default:
		writeError(w, http.StatusBadRequest, "bad_request", "uncertain must be true or false")
		return
	}
	if f.Status != "" && !f.Status.Valid() {
		writeError(w, http.StatusBadRequest, "bad_request", "unknown status "+strconv.Quote(string(f.Status))+": use QUEUED, RUNNING, RETRYING, SUCCESS, FAILED, CANCELED or SUPERSEDED")
		return
	}
	list, next, err := s.jobs.List(r.Context(), scope, f)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, apitypes.JobList{Jobs: wireJobs(list), NextCursor: next})
}

func (s *Server) retryJob(w http.ResponseWriter, r *http.Request, key apikeys.Key) {
	scope, err := s.scope(r, key)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	job, err := s.jobs.Retry(r.Context(), scope, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.audited(r.Context(), key, audit.ActionJobRetry, job.ID, map[string]any{"tenant": job.Tenant, "target": job.Target})
	s.enqueue.Enqueue(r.Context(), []jobs.Ref{jobs.RefOf(job)})
	writeJSON(w, http.StatusOK, wireJob(job))
}

func (s *Server) cancelJob(w http.ResponseWriter, r *http.Request, key apikeys.Key) {
	scope, err := s.scope(r, key)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	job, err := s.jobs.Cancel(r.Context(), scope, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.audited(r.Context(), key, audit.ActionJobCancel, job.ID, map[string]any{"tenant": job.Tenant, "target": job.Target})
	writeJSON(w, http.StatusOK, wireJob(job))
}
