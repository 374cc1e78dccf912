package api

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/ferry-relay/ferry/apitypes"
	"github.com/ferry-relay/ferry/internal/apikeys"
	"github.com/ferry-relay/ferry/internal/audit"
	"github.com/ferry-relay/ferry/internal/coord/rates"
	"github.com/ferry-relay/ferry/internal/coord/targetstate"
	"github.com/ferry-relay/ferry/targets"
)

// TargetStates is what the API needs of the shared target states;
// *targetstate.Store is the one.
type TargetStates interface {
	List(ctx context.Context, names []string) ([]targetstate.State, error)
	Get(ctx context.Context, target string) (targetstate.State, error)
	RequestProbe(ctx context.Context, target string, probe time.Duration) (bool, error)
}

// SlotCounter counts the slots of a shared cap in use; *limits.Leases is
// the one.
type SlotCounter interface {
	InUse(ctx context.Context, group string) (int, error)
}

// listTargets answers GET /v1/targets: every configured target the key may
// use, with its state as the workers share it in Postgres (this process
// may run no worker), the shared caps it counts against and its current
// request rate.
func (s *Server) listTargets(w http.ResponseWriter, r *http.Request, key apikeys.Key) {
	var names []string
	for _, name := range s.targets.Names() {
		if usable(s.targets[name], key) {
			names = append(names, name)
		}
	}
	var current map[string]rates.State
	if s.rates != nil {
		var err error
		if current, err = s.rates.Current(r.Context()); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	states := make([]targetstate.State, len(names))
	if s.states != nil {
		var err error
		if states, err = s.states.List(r.Context(), names); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	out := []apitypes.Target{}
	for i, name := range names {
		t := s.targets[name]
		v, err := s.wireTarget(r.Context(), t, states[i])
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if t.Rate > 0 {
			// Until a worker first paces it, the rate is the configured one.
			v.Rate = &apitypes.TargetRate{Current: t.Rate, Max: t.Rate, Burst: max(t.Burst, 1)}
			if st, ok := current[t.Name]; ok {
				v.Rate.Current, v.Rate.Burst = st.Rate, st.Burst
				if !st.Lowered.IsZero() {
					lowered := st.Lowered
					v.Rate.LoweredAt = &lowered
				}
			}
		}
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, apitypes.TargetList{Targets: out})
}

// resumeTarget answers POST /v1/targets/{name}/resume: a target paused
// for refused credentials, or whose circuit is open, is probed at once
// (after an operator fixed the secret, or the target), and resumes by
// itself if the probe succeeds.
func (s *Server) resumeTarget(w http.ResponseWriter, r *http.Request, key apikeys.Key) {
	t, ok := s.targets[r.PathValue("name")]
	if !ok || !usable(t, key) {
		writeError(w, http.StatusNotFound, "not_found", "no target named "+strconv.Quote(r.PathValue("name")))
		return
	}
	var requested bool
	st := targetstate.State{Target: t.Name, State: targetstate.OK}
	if s.states != nil {
		var err error
		if requested, err = s.states.RequestProbe(r.Context(), t.Name, t.CredentialProbe); err != nil {
			s.fail(w, r, err)
			return
		}
		if st, err = s.states.Get(r.Context(), t.Name); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	v, err := s.wireTarget(r.Context(), t, st)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	code := http.StatusOK
	if requested {
		code = http.StatusAccepted
		s.log.Info("probe of a paused target requested", "target", t.Name)
		s.audited(r.Context(), key, audit.ActionTargetResume, t.Name, map[string]any{"state": string(st.State)})
	}
	writeJSON(w, code, apitypes.ResumeResult{Target: v, ProbeRequested: requested})
}

func (s *Server) wireTarget(ctx context.Context, t *targets.Target, st targetstate.State) (apitypes.Target, error) {
	v := apitypes.Target{Name: t.Name, Kind: t.Kind, MaxAttempts: t.MaxAttempts, Concurrency: t.Concurrency,
		State: st.State, Reason: st.Reason, MaxUploadBytes: s.cfg.MaxUploadBytes}
	if v.State == "" {
		v.State = targetstate.OK
	}
	if sl, ok := t.Deliverer.(targets.SizeLimiter); ok {
		v.MaxFileBytes = sl.MaxFileBytes()
	}
	if !st.Since.IsZero() {
		since := st.Since
		v.Since = &since
	}
	// A paused target's next probe, or an open circuit's (when a worker
	// shared it); none is recorded as the epoch.
	if st.State != targetstate.OK && st.NextProbeAt.After(time.Unix(0, 0)) {
		next := st.NextProbeAt
		v.NextProbeAt = &next
	}
	for _, l := range t.Limits() {
		tl := apitypes.TargetLimit{Group: l.Group, Max: l.Max}
		if s.slots != nil {
			n, err := s.slots.InUse(ctx, l.Group)
			if err != nil {
				return v, err
			}
			tl.InFlight = n
		}
		v.Limits = append(v.Limits, tl)
	}
	return v, nil
}
