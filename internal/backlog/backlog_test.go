package backlog

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferry-relay/ferry/internal/coord/targetstate"
	"github.com/ferry-relay/ferry/internal/testenv"
	"github.com/ferry-relay/ferry/jobs"
)

// One sample on real Postgres and NATS sets the queue gauges from the
// consumer's counters, the age of the oldest waiting job, and the state
// gauge; a target without a consumer has no queue gauges, and one with
// nothing waiting has age 0.
func TestSample(t *testing.T) {
	ctx := testenv.Context(t)
	pool, _ := testenv.Postgres(t)
	q := testenv.Queue(t)
	store := jobs.NewStore(pool)
	var ids []string
	for range 3 {
		n := jobs.New{ID: uuid.Must(uuid.NewV7()).String(), Target: "busy", Filename: "f.pdf", ContentType: "application/pdf",
			Size: 1, SHA256: "x", ObjectKey: "o", MaxAttempts: 3}
		if _, _, err := store.Create(ctx, n); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, n.ID)
	}
	// The oldest was uploaded an hour ago; a finished job older still does
	// not count.
	if _, err := pool.Exec(ctx, `UPDATE jobs SET created_at = now() - interval '1 hour' WHERE id = $1`, ids[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `UPDATE jobs SET status = 'SUCCESS', created_at = now() - interval '5 hours' WHERE id = $1`, ids[2]); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Consumer(ctx, "busy", 0); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids[:2] {
		if err := q.Publish(ctx, "busy", id); err != nil {
			t.Fatal(err)
		}
	}
	states := targetstate.NewStore(pool, "test")
	if _, err := states.SetCircuit(ctx, "busy", true, "503s"); err != nil {
		t.Fatal(err)
	}

	s := New(Config{Targets: []string{"busy", "idle"}}, Deps{Queue: q, Jobs: store, States: states})
	s.Sample(ctx)

	if got := gauge(t, "ferry_queue_pending_messages", "busy"); got != 2 {
		t.Errorf("pending(busy) = %v, want 2", got)
	}
	if got := gauge(t, "ferry_queue_in_flight_messages", "busy"); got != 0 {
		t.Errorf("in flight(busy) = %v, want 0", got)
	}
	if hasSeries(t, "ferry_queue_pending_messages", "idle") {
		t.Errorf("pending(idle) is set: idle has no consumer")
	}
	if age := gauge(t, "ferry_backlog_oldest_age_seconds", "busy"); age < 3500 || age > 3700 {
		t.Errorf("oldest(busy) = %vs, want about 3600", age)
	}
	if age := gauge(t, "ferry_backlog_oldest_age_seconds", "idle"); age != 0 {
		t.Errorf("oldest(idle) = %v, want 0", age)
	}
	if v := stateGauge(t, "busy", targetstate.CircuitOpen); v != 1 {
		t.Errorf("ferry_target_state{busy,circuit_open} = %v, want 1", v)
	}
	if v := stateGauge(t, "idle", targetstate.OK); v != 1 {
		t.Errorf("ferry_target_state{idle,ok} = %v, want 1", v)
	}
	if at := *seriesValue(t, "ferry_backlog_sampled_timestamp_seconds", nil); time.Since(time.Unix(int64(at), 0)) > time.Minute {
		t.Errorf("sampled at %v", at)
	}
}

// gauge reads the series of name for target; -1 when absent.
func gauge(t *testing.T, name, target string) float64 {
	if v := seriesValue(t, name, map[string]string{"target": target}); v != nil {
		return *v
	}
	return -1
}

// stateGauge reads ferry_target_state; -1 when absent.
func stateGauge(t *testing.T, target, state string) float64 {
	if v := seriesValue(t, "ferry_target_state", map[string]string{"target": target, "state": state}); v != nil {
		return *v
	}
	return -1
}

// A source that fails has its gauges removed, not left stale.
func TestSampleDropsStaleGauges(t *testing.T) {
	ctx := testenv.Context(t)
	pool, _ := testenv.Postgres(t)
	q := testenv.Queue(t)
	if _, err := q.Consumer(ctx, "gone", 0); err != nil {
		t.Fatal(err)
	}
	s := New(Config{Targets: []string{"gone"}}, Deps{Queue: q, Jobs: jobs.NewStore(pool), States: targetstate.NewStore(pool, "test")})
	s.Sample(ctx)
	gauges := []string{"ferry_queue_pending_messages", "ferry_queue_in_flight_messages", "ferry_backlog_oldest_age_seconds"}
	for _, g := range gauges {
		if !hasSeries(t, g, "gone") {
			t.Fatalf("%s lacks target gone after a good sample", g)
		}
	}
	pool.Close()
	q.Close()
	s.Sample(ctx)
	for _, g := range gauges {
		if hasSeries(t, g, "gone") {
			t.Errorf("%s of target gone survived a failed sample", g)
		}
	}
}

// hasSeries reports whether the gauge named name has a series labelled
// target, reading the default registry (creating none).
func hasSeries(t *testing.T, name, target string) bool {
	return seriesValue(t, name, map[string]string{"target": target}) != nil
}

// seriesValue returns the value of the series of gauge name with the
// given labels, nil when there is none.
func seriesValue(t *testing.T, name string, want map[string]string) *float64 {
	t.Helper()
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if labels[k] != v {
					continue metrics
				}
			}
			v := m.GetGauge().GetValue()
			return &v
		}
	}
	return nil
}
