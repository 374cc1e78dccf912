package api

import (
	"context"
	"net/http"
	"sort"
	"time"

	"github.com/ferry-relay/ferry/apitypes"
	"github.com/ferry-relay/ferry/internal/apikeys"
	"github.com/ferry-relay/ferry/jobs"
)

// DashboardStore is what the API needs of the job store for the figures
// the dashboard shows.
type DashboardStore interface {
	Activity(ctx context.Context, scope jobs.Scope, window time.Duration) (map[string]*jobs.TargetActivity, error)
	FailureGroups(ctx context.Context, tenant, batch string) ([]jobs.FailureGroup, error)
	BatchThroughput(ctx context.Context, tenant, batch string) ([]jobs.ThroughputPoint, error)
}

// activityWindow is the window of GET /v1/activity.
const activityWindow = time.Hour

// dashboardRoutes registers the figures behind the dashboard, which any
// client may read too:
//
//	GET /v1/activity                    per target: in flight, delivered, failed, 429s, deliveries per minute (last hour)
//	GET /v1/batches/{name}/failures     the batch's FAILED jobs grouped by normalised error
//	GET /v1/batches/{name}/throughput   the batch's deliveries over its life
func (s *Server) dashboardRoutes(mux *http.ServeMux) {
	mux.Handle("GET /v1/activity", s.auth(apikeys.PermRead, s.activity))
	mux.Handle("GET /v1/batches/{name}/failures", s.auth(apikeys.PermRead, s.batchFailures))
	mux.Handle("GET /v1/batches/{name}/throughput", s.auth(apikeys.PermRead, s.batchThroughput))
}

func (s *Server) activity(w http.ResponseWriter, r *http.Request, key apikeys.Key) {
	scope, err := s.scope(r, key)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	act, err := s.jobs.Activity(r.Context(), scope, activityWindow)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := apitypes.Activity{WindowSeconds: int(activityWindow / time.Second), Targets: []apitypes.TargetActivity{}}
	for _, a := range act {
		out.Targets = append(out.Targets, apitypes.TargetActivity{Target: a.Target, InFlight: a.InFlight,
			Delivered: a.Delivered, Failed: a.Failed, RateLimited: a.RateLimited, PerMinute: a.PerMinute})
	}
	sort.Slice(out.Targets, func(i, j int) bool { return out.Targets[i].Target < out.Targets[j].Target })
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) batchFailures(w http.ResponseWriter, r *http.Request, key apikeys.Key) {
	name := r.PathValue("name")
	tenant, err := s.tenantOf(r, key)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	gs, err := s.jobs.FailureGroups(r.Context(), tenant, name)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if len(gs) == 0 && !s.batchExists(w, r, tenant, name) {
		return
	}
	out := apitypes.FailureGroups{Groups: make([]apitypes.FailureGroup, len(gs))}
	for i, g := range gs {
		out.Groups[i] = apitypes.FailureGroup{Group: g.Group, Count: g.Count, Example: g.Example,
			ExampleJob: g.ExampleJob, FirstSeen: g.FirstSeen, LastSeen: g.LastSeen}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) batchThroughput(w http.ResponseWriter, r *http.Request, key apikeys.Key) {
	name := r.PathValue("name")
	tenant, err := s.tenantOf(r, key)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	pts, err := s.jobs.BatchThroughput(r.Context(), tenant, name)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if len(pts) == 0 && !s.batchExists(w, r, tenant, name) {
		return
	}
	out := apitypes.Throughput{Points: make([]apitypes.ThroughputPoint, len(pts))}
	for i, p := range pts {
		out.Points[i] = apitypes.ThroughputPoint{At: p.At, Seconds: p.Seconds, Success: p.Success,
			SuccessBytes: p.SuccessBytes, Failed: p.Failed}
	}
	writeJSON(w, http.StatusOK, out)
}

// batchExists answers 404 (or the error) and returns false when the tenant
// has no batch named name. The figures above ask it only when they found
// nothing: a batch with failures or deliveries exists.
func (s *Server) batchExists(w http.ResponseWriter, r *http.Request, tenant, name string) bool {
	if _, err := s.jobs.BatchSummary(r.Context(), tenant, name); err != nil {
		s.fail(w, r, err)
		return false
	}
	return true
}
