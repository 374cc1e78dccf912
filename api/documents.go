package api

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/ferry-relay/ferry/apitypes"
	"github.com/ferry-relay/ferry/internal/apikeys"
	"github.com/ferry-relay/ferry/internal/audit"
	"github.com/ferry-relay/ferry/internal/tracing"
	"github.com/ferry-relay/ferry/jobs"
	"github.com/ferry-relay/ferry/targets"
)

// Documents (issue 21): the versions of one logical file at one target.
// Uploads name them (upload_document.go); these routes list and show
// them, and record deletes. Readers read; operators and admins delete;
// another tenant's document is not found.

// DocumentStore is what the API needs of the store for documents.
type DocumentStore interface {
	SameVersion(ctx context.Context, tenant, target, key, sha256 string) (jobs.Job, error)
	RecordDelete(ctx context.Context, r jobs.DeleteRequest) (jobs.Job, error)
	Documents(ctx context.Context, scope jobs.Scope, f jobs.DocumentFilter) ([]jobs.Document, string, error)
	GetDocument(ctx context.Context, scope jobs.Scope, id string) (jobs.Document, error)
	Versions(ctx context.Context, id string) ([]jobs.Version, error)
}

// maxDocumentsPage bounds one page of documents.
const maxDocumentsPage = 1000

func (s *Server) documentRoutes(mux *http.ServeMux) {
	mux.Handle("GET /v1/documents", s.auth(apikeys.PermRead, s.listDocuments))
	mux.Handle("GET /v1/documents/{id}", s.auth(apikeys.PermRead, s.getDocument))
	mux.Handle("DELETE /v1/documents", traced("document.delete", s.auth(apikeys.PermDelete, s.deleteDocument)))
	mux.Handle("DELETE /v1/documents/{id}", traced("document.delete", s.auth(apikeys.PermDelete, s.deleteDocument)))
}

func (s *Server) listDocuments(w http.ResponseWriter, r *http.Request, key apikeys.Key) {
	scope, err := s.scope(r, key)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	q := r.URL.Query()
	p, err := parsePage(q, maxDocumentsPage)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	f := jobs.DocumentFilter{Target: q.Get("target"), Batch: q.Get("batch"), KeyPrefix: q.Get("key_prefix"),
		State: q.Get("state"), Cursor: p.cursor, Limit: p.limit}
	if f.State != "" && f.State != jobs.DocumentActive && f.State != jobs.DocumentDeleted {
		s.fail(w, r, badRequest("unknown state %s: use active or deleted", strconv.Quote(f.State)))
		return
	}
	docs, next, err := s.jobs.Documents(r.Context(), scope, f)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := apitypes.DocumentList{Documents: make([]apitypes.Document, len(docs)), NextCursor: next}
	for i, d := range docs {
		out.Documents[i] = wireDocument(d, nil)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) getDocument(w http.ResponseWriter, r *http.Request, key apikeys.Key) {
	scope, err := s.scope(r, key)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	d, err := s.jobs.GetDocument(r.Context(), scope, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	vs, err := s.jobs.Versions(r.Context(), d.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, wireDocument(d, vs))
}

// deleteDocument records the delete of a document, named by id or by
// ?target= and ?key=: 202 with its job, or 200 with the delete already on
// its way; 422 delete_unsupported when the target's connector cannot
// delete.
func (s *Server) deleteDocument(w http.ResponseWriter, r *http.Request, key apikeys.Key) {
	req, t, err := s.deleteRequest(r, key)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	req.TraceParent = tracing.TraceParent(r.Context())
	job, err := s.jobs.RecordDelete(r.Context(), req)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if job.Recorded == jobs.RecordedUnchanged {
		writeJSON(w, http.StatusOK, wireJob(job))
		return
	}
	s.audited(r.Context(), key, audit.ActionDocumentDelete, job.DocumentID,
		map[string]any{"tenant": job.Tenant, "target": t.Name, "key": job.DocumentKey, "job": job.ID})
	s.enqueue.EnqueueFresh(r.Context(), []jobs.Ref{jobs.RefOf(job)})
	w.Header().Set("Location", "/v1/jobs/"+job.ID)
	writeJSON(w, http.StatusAccepted, wireJob(job))
}

// deleteRequest resolves what a delete names, and refuses it when the
// document's target cannot delete.
func (s *Server) deleteRequest(r *http.Request, key apikeys.Key) (jobs.DeleteRequest, *targets.Target, error) {
	scope, err := s.scope(r, key)
	if err != nil {
		return jobs.DeleteRequest{}, nil, err
	}
	req := jobs.DeleteRequest{Scope: scope, APIKeyID: key.ID}
	var target string
	if id := r.PathValue("id"); id != "" {
		d, err := s.jobs.GetDocument(r.Context(), scope, id)
		if err != nil {
			return jobs.DeleteRequest{}, nil, err
		}
		req.DocumentID, target = d.ID, d.Target
	} else {
		q := r.URL.Query()
		req.Target, req.Key = q.Get("target"), q.Get("key")
		if req.Target == "" || req.Key == "" {
			return jobs.DeleteRequest{}, nil, badRequest("name the document: DELETE /v1/documents/{id}, or ?target= and ?key=")
		}
		if req.Tenant, err = s.tenantOf(r, key); err != nil {
			return jobs.DeleteRequest{}, nil, err
		}
		target = req.Target
	}
	t, err := s.target(key, target)
	if err != nil {
		return jobs.DeleteRequest{}, nil, err
	}
	if !versionSupport(t).Delete {
		return jobs.DeleteRequest{}, nil, &apiError{http.StatusUnprocessableEntity, "delete_unsupported",
			fmt.Sprintf("target %s (kind %s) cannot delete documents: its system offers no delete ferry can use", t.Name, t.Kind)}
	}
	req.MaxAttempts = t.MaxAttempts
	return req, t, nil
}

// versionSupport is what t's connector does with documents: nothing
// special (every version a new file, no delete) without a Versioner.
func versionSupport(t *targets.Target) targets.VersionSupport {
	if v, ok := t.Deliverer.(targets.Versioner); ok {
		return v.Versions()
	}
	return targets.VersionSupport{}
}

func wireDocument(d jobs.Document, history []jobs.Version) apitypes.Document {
	out := apitypes.Document{ID: d.ID, Tenant: d.Tenant, Target: d.Target, Key: d.Key, State: d.State,
		Remote: d.Remote, Versions: d.Versions, CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt,
		URL: "/v1/documents/" + url.PathEscape(d.ID)}
	if d.CurrentVersion > 0 {
		out.Current = &apitypes.DocumentVersion{Version: d.CurrentVersion, Job: d.CurrentJob, Status: apitypes.StatusSuccess,
			SHA256: d.CurrentSHA256, Size: d.CurrentSize, Op: jobs.OpPut}
		if d.State == jobs.DocumentDeleted {
			out.Current.Op = jobs.OpDelete
		}
	}
	for _, v := range history {
		wv := apitypes.DocumentVersion{Version: v.Version, Job: v.Job, Op: v.Op, Status: apitypes.Status(v.Status),
			SHA256: v.SHA256, Size: v.Size, AcceptedAt: v.AcceptedAt, DeliveredAt: v.DeliveredAt, RemoteVersion: v.RemoteID}
		out.History = append(out.History, wv)
		if v.Version == d.CurrentVersion {
			out.Current = &wv
		}
	}
	return out
}
