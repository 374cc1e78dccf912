// Package targetstate keeps each target's delivery health in Postgres, so
// that every process sees the same: workers write it when a target's
// credentials are refused or its circuit opens, API processes read it for
// GET /v1/targets and POST /v1/targets/{name}/resume, and the CLI shows it
// (ferry targets).
//
// A target is ok, circuit_open (its deliveries keep failing; one worker
// process pauses and probes it) or paused_credentials (it refused the
// connector's credentials after the connector's one renewal: every worker
// stops delivering to it, no job is failed for it, and one probe at a time,
// every probe interval doubling up to a cap, checks whether they work
// again). The table target_states (migration 004) holds one row per target
// that ever left ok; State is a row. New fields (the dashboard's, the
// adaptive rate's current rate) are new columns and new fields of State,
// read by the same List and Get.
package targetstate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// The states of a target.
const (
	OK                = "ok"
	CircuitOpen       = "circuit_open"
	PausedCredentials = "paused_credentials"
)

// States lists every state, for the gauge.
var States = []string{OK, CircuitOpen, PausedCredentials}

// State is a target's delivery health.
type State struct {
	Target string
	// State is OK, CircuitOpen or PausedCredentials.
	State string
	// Reason is why it left OK (the last refusal, without secrets).
	Reason string
	// Since is when it entered State; zero for a target never recorded.
	Since time.Time
	// ProbeEvery is the wait between probes while paused.
	ProbeEvery time.Duration
	// NextProbeAt is when the next probe is due while paused.
	NextProbeAt time.Time
	// ChangedBy is the process that made the last change.
	ChangedBy string
}

var gauge = promauto.NewGaugeVec(prometheus.GaugeOpts{
	Name: "ferry_target_state",
	Help: "1 for the state each target is in (ok, circuit_open, paused_credentials), 0 for the others, as last read from Postgres by this process.",
}, []string{"target", "state"})

// observe sets the gauge of st.
func observe(st State) {
	for _, s := range States {
		v := 0.0
		if s == st.State {
			v = 1
		}
		gauge.WithLabelValues(st.Target, s).Set(v)
	}
}

// Store reads and writes target states.
type Store struct {
	db *pgxpool.Pool
	// by names this process in changed_by.
	by string
}

// NewStore returns a store on db; by names this process in the rows it
// changes.
func NewStore(db *pgxpool.Pool, by string) *Store { return &Store{db: db, by: by} }

const columns = `target, state, reason, since, (extract(epoch FROM probe_every) * 1000)::bigint, coalesce(next_probe_at, 'epoch'), changed_by`

func scan(row pgx.Row) (State, error) {
	var st State
	var ms int64
	err := row.Scan(&st.Target, &st.State, &st.Reason, &st.Since, &ms, &st.NextProbeAt, &st.ChangedBy)
	st.ProbeEvery = time.Duration(ms) * time.Millisecond
	return st, err
}

// Get returns target's state: OK with a zero Since when none is recorded.
func (s *Store) Get(ctx context.Context, target string) (State, error) {
	st, err := scan(s.db.QueryRow(ctx, `SELECT `+columns+` FROM target_states WHERE target = $1`, target))
	if errors.Is(err, pgx.ErrNoRows) {
		st, err = State{Target: target, State: OK}, nil
	}
	if err != nil {
		return State{}, fmt.Errorf("target state %s: %w", target, err)
	}
	observe(st)
	return st, nil
}

// List returns the state of each of names, in order; a target never
// recorded is OK.
func (s *Store) List(ctx context.Context, names []string) ([]State, error) {
	rows, err := s.db.Query(ctx, `SELECT `+columns+` FROM target_states WHERE target = ANY($1)`, names)
	if err != nil {
		return nil, fmt.Errorf("target states: %w", err)
	}
	byName := map[string]State{}
	for rows.Next() {
		st, err := scan(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("target states: %w", err)
		}
		byName[st.Target] = st
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("target states: %w", err)
	}
	out := make([]State, 0, len(names))
	for _, n := range names {
		st, ok := byName[n]
		if !ok {
			st = State{Target: n, State: OK}
		}
		observe(st)
		out = append(out, st)
	}
	return out, nil
}

// Pause marks target paused_credentials for reason, its first probe due
// after probe. It reports whether the state changed (the caller logs it,
// once); a target already paused keeps its probe schedule.
func (s *Store) Pause(ctx context.Context, target, reason string, probe time.Duration) (bool, error) {
	tag, err := s.db.Exec(ctx, `
		INSERT INTO target_states AS t (target, state, reason, since, probe_every, next_probe_at, changed_by, updated_at)
		VALUES ($1, 'paused_credentials', $2, now(), $3 * interval '1 millisecond', now() + $3 * interval '1 millisecond', $4, now())
		ON CONFLICT (target) DO UPDATE SET state = 'paused_credentials', reason = EXCLUDED.reason, since = now(),
			probe_every = EXCLUDED.probe_every, next_probe_at = EXCLUDED.next_probe_at,
			changed_by = EXCLUDED.changed_by, updated_at = now()
		WHERE t.state <> 'paused_credentials'`, target, reason, probe.Milliseconds(), s.by)
	if err != nil {
		return false, fmt.Errorf("pause target %s: %w", target, err)
	}
	return tag.RowsAffected() == 1, nil
}

// ClaimProbe takes the probe of a paused target when it is due: it moves
// the next probe one interval on and reports true to the one caller that
// moved it, false to every other (not paused, not due, or another process
// took it).
func (s *Store) ClaimProbe(ctx context.Context, target string) (bool, error) {
	tag, err := s.db.Exec(ctx, `
		UPDATE target_states SET next_probe_at = now() + probe_every, updated_at = now()
		WHERE target = $1 AND state = 'paused_credentials' AND next_probe_at <= now()`, target)
	if err != nil {
		return false, fmt.Errorf("claim probe of %s: %w", target, err)
	}
	return tag.RowsAffected() == 1, nil
}

// ProbeFailed records a probe that found the credentials still refused:
// the wait between probes doubles, up to max.
func (s *Store) ProbeFailed(ctx context.Context, target, reason string, max time.Duration) error {
	_, err := s.db.Exec(ctx, `
		UPDATE target_states SET probe_every = least(probe_every * 2, $3 * interval '1 millisecond'),
			next_probe_at = now() + least(probe_every * 2, $3 * interval '1 millisecond'), reason = $2, changed_by = $4, updated_at = now()
		WHERE target = $1 AND state = 'paused_credentials'`, target, reason, max.Milliseconds(), s.by)
	if err != nil {
		return fmt.Errorf("record probe of %s: %w", target, err)
	}
	return nil
}

// Resume marks a paused target ok (its credentials work again). It
// reports whether the state changed.
func (s *Store) Resume(ctx context.Context, target string) (bool, error) {
	tag, err := s.db.Exec(ctx, `
		UPDATE target_states SET state = 'ok', reason = '', since = now(), next_probe_at = NULL, changed_by = $2, updated_at = now()
		WHERE target = $1 AND state = 'paused_credentials'`, target, s.by)
	if err != nil {
		return false, fmt.Errorf("resume target %s: %w", target, err)
	}
	return tag.RowsAffected() == 1, nil
}

// RequestProbe makes the next probe of a paused target due now, with the
// first interval again (an operator fixed the secret), or asks the worker
// processes whose circuit to target is open to probe it now. It reports
// whether the target is paused or its circuit open.
func (s *Store) RequestProbe(ctx context.Context, target string, probe time.Duration) (bool, error) {
	tag, err := s.db.Exec(ctx, `
		UPDATE target_states SET next_probe_at = now(), changed_by = $3, updated_at = now(),
			probe_every = CASE WHEN state = 'paused_credentials' THEN $2 * interval '1 millisecond' ELSE probe_every END,
			probe_requested_at = CASE WHEN state = 'circuit_open' THEN clock_timestamp() ELSE probe_requested_at END
		WHERE target = $1 AND state IN ('paused_credentials', 'circuit_open')`, target, probe.Milliseconds(), s.by)
	if err != nil {
		return false, fmt.Errorf("request probe of %s: %w", target, err)
	}
	return tag.RowsAffected() == 1, nil
}

// ShareCircuit is what a worker process whose circuit to target is open
// says and hears: next is when its breaker probes next, kept as the
// target's next probe when it is the earliest still to come (several
// processes may each have their breaker open). It reports whether an
// operator asked for a probe now, and takes the request: one process
// probes. It writes only when something changes.
func (s *Store) ShareCircuit(ctx context.Context, target string, next time.Time) (bool, error) {
	var requested bool
	err := s.db.QueryRow(ctx, `
		WITH cur AS (
			SELECT probe_requested_at IS NOT NULL AS requested,
				(next_probe_at IS DISTINCT FROM $2 AND (next_probe_at IS NULL OR next_probe_at < now() OR $2 < next_probe_at)) AS sooner
			FROM target_states WHERE target = $1 AND state = 'circuit_open' FOR UPDATE
		), upd AS (
			UPDATE target_states t SET probe_requested_at = NULL,
				next_probe_at = CASE WHEN cur.sooner THEN $2 ELSE t.next_probe_at END
			FROM cur WHERE t.target = $1 AND (cur.requested OR cur.sooner)
		)
		SELECT requested FROM cur`, target, next).Scan(&requested)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("share circuit of %s: %w", target, err)
	}
	return requested, nil
}

// SetCircuit records that target's circuit opened (open, with reason) or
// closed. A paused target stays paused: refused credentials say more than
// failing deliveries. It reports whether the state changed.
func (s *Store) SetCircuit(ctx context.Context, target string, open bool, reason string) (bool, error) {
	var tag interface{ RowsAffected() int64 }
	var err error
	if open {
		tag, err = s.db.Exec(ctx, `
			INSERT INTO target_states AS t (target, state, reason, since, changed_by, updated_at)
			VALUES ($1, 'circuit_open', $2, now(), $3, now())
			ON CONFLICT (target) DO UPDATE SET state = 'circuit_open', reason = EXCLUDED.reason, since = now(),
				changed_by = EXCLUDED.changed_by, updated_at = now(), next_probe_at = NULL, probe_requested_at = NULL
			WHERE t.state = 'ok'`, target, reason, s.by)
	} else {
		tag, err = s.db.Exec(ctx, `
			UPDATE target_states SET state = 'ok', reason = '', since = now(), changed_by = $2, updated_at = now()
			WHERE target = $1 AND state = 'circuit_open'`, target, s.by)
	}
	if err != nil {
		return false, fmt.Errorf("record circuit of %s: %w", target, err)
	}
	return tag.RowsAffected() == 1, nil
}
