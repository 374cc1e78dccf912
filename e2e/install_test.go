package e2e

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferry-relay/ferry/internal/enqueue"
	"github.com/ferry-relay/ferry/internal/fakes/sink"
	"github.com/ferry-relay/ferry/internal/installation"
	"github.com/ferry-relay/ferry/internal/testenv"
	"github.com/ferry-relay/ferry/jobs"
	"github.com/ferry-relay/ferry/queue"
	"github.com/ferry-relay/ferry/sweeper"
)

// useInstallation names the pipeline's queue after its database's
// installation id and makes its stream.
func (p *pipeline) useInstallation(ctx context.Context) {
	p.t.Helper()
	id, err := installation.ID(ctx, p.pool)
	if err != nil {
		p.t.Fatal(err)
	}
	if err := p.queue.SetInstallation(id); err != nil {
		p.t.Fatal(err)
	}
	if err := p.queue.EnsureStream(ctx); err != nil {
		p.t.Fatal(err)
	}
}

// uploadMany uploads n small files to target raw and returns their job ids.
func (p *pipeline) uploadMany(prefix string, n int) []string {
	p.t.Helper()
	var out []string
	for i := range n {
		code, body := p.rawUpload("raw", file{name: fmt.Sprintf("%s-%d.txt", prefix, i), data: fmt.Appendf(nil, "%s %d", prefix, i)}, nil)
		if code != http.StatusAccepted {
			p.t.Fatalf("upload: %d %s", code, body)
		}
		out = append(out, p.decodeJobs(body)[0].ID)
	}
	return out
}

// allSucceeded fails the test unless every job of ids is SUCCESS.
func (p *pipeline) allSucceeded(ids []string, within time.Duration) {
	p.t.Helper()
	for id, j := range p.waitFinal(ids, within) {
		if j.Status != jobs.StatusSuccess {
			p.t.Errorf("job %s %s: %s", id, j.Status, j.LastError)
		}
	}
}

// Two installations (two databases) on one NATS server, each with a
// target named raw: every job is delivered, by its own installation, to its
// own target, and none is left QUEUED. Before, both used one stream and
// one consumer per target name: each worker took about half of the other's
// messages, found no such job and dropped it, and those jobs stayed QUEUED
// for good.
func TestTwoInstallationsShareOneNATS(t *testing.T) {
	t.Parallel()
	srv := testenv.NATS(t)
	type inst struct {
		p    *pipeline
		sink *sink.Server
		ids  []string
	}
	var insts []*inst
	for _, name := range []string{"a", "b"} {
		q, err := queue.Connect(srv.URL(), t.Name()+name)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(q.Close)
		s, base := newSink(t, sink.Options{})
		p := newPipeline(t, fmt.Sprintf("targets:\n  - {name: raw, kind: http, url: %q, method: PUT}\n", base+"/ok/raw"),
			pipelineOptions{noWorker: true, queue: q, installation: true})
		insts = append(insts, &inst{p: p, sink: s})
	}
	for _, in := range insts {
		in.ids = in.p.uploadMany(in.p.queue.Installation(), 30)
	}
	for _, in := range insts {
		in.p.startWorker(workerConfig())
	}
	for _, in := range insts {
		in.p.allSucceeded(in.ids, time.Minute)
		var got []string
		for _, d := range in.sink.Documents() {
			got = append(got, d.JobID)
		}
		slices.Sort(got)
		want := slices.Sorted(slices.Values(in.ids))
		if !slices.Equal(slices.Compact(got), want) {
			t.Errorf("installation %s's target received %d jobs, want its own %d", in.p.queue.Installation(), len(got), len(want))
		}
	}
}

// The jobs stream purged in place while jobs wait, and again while a
// worker delivers: every job is delivered. Before, the purged jobs stayed
// QUEUED for good, even across a restart.
func TestStreamPurgedMidRun(t *testing.T) {
	t.Parallel()
	_, base := newSink(t, sink.Options{})
	p := newPipeline(t, fmt.Sprintf("targets:\n  - {name: raw, kind: http, url: %q, method: PUT}\n", base+"/ok/raw"),
		pipelineOptions{noWorker: true, installation: true})
	ctx := testenv.Context(t)
	ids := p.uploadMany("purge", 30)
	if err := p.queue.PurgeStream(ctx); err != nil {
		t.Fatal(err)
	}
	p.startWorker(workerConfig())
	more := p.uploadMany("purge-again", 30)
	if err := p.queue.PurgeStream(ctx); err != nil {
		t.Fatal(err)
	}
	p.allSucceeded(append(ids, more...), time.Minute)
}

// A consumer deleted, or reset past the waiting messages, by hand while
// jobs wait: every job is delivered (the worker makes a deleted consumer
// again; the sweeper deletes a reset one, which the worker then makes
// again from the first message).
func TestConsumerDeletedOrResetMidRun(t *testing.T) {
	t.Parallel()
	srv := testenv.NATS(t)
	q, err := queue.Connect(srv.URL(), t.Name())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(q.Close)
	_, base := newSink(t, sink.Options{})
	p := newPipeline(t, fmt.Sprintf("targets:\n  - {name: raw, kind: http, url: %q, method: PUT}\n", base+"/ok/raw"),
		pipelineOptions{noWorker: true, installation: true, queue: q})
	ctx := testenv.Context(t)
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	if _, err := p.queue.Consumer(ctx, "raw", 0); err != nil {
		t.Fatal(err)
	}
	ids := p.uploadMany("reset", 20)
	st, err := js.Stream(ctx, p.queue.StreamName())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.ResetConsumerToSequence(ctx, queue.ConsumerName("raw"), st.CachedInfo().State.LastSeq+1); err != nil {
		t.Fatal(err)
	}
	p.startWorker(workerConfig())
	p.allSucceeded(ids, time.Minute)

	more := p.uploadMany("deleted", 20)
	if err := js.DeleteConsumer(ctx, p.queue.StreamName(), queue.ConsumerName("raw")); err != nil {
		t.Fatal(err)
	}
	p.allSucceeded(more, time.Minute)
}

// A message for a job this installation does not hold is dropped, logged
// and counted (ferry_unknown_job_messages_total), never silently.
func TestUnknownJobMessageCounted(t *testing.T) {
	t.Parallel()
	_, base := newSink(t, sink.Options{})
	p := newPipeline(t, fmt.Sprintf("targets:\n  - {name: unknownjobs, kind: http, url: %q, method: PUT}\n", base+"/ok/raw"),
		pipelineOptions{installation: true})
	ctx := testenv.Context(t)
	before := unknownCount(t, "unknownjobs")
	if err := p.queue.Publish(ctx, "unknownjobs", "01a00000-0000-7000-8000-000000000000"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for unknownCount(t, "unknownjobs") != before+1 {
		if time.Now().After(deadline) {
			t.Fatalf("unknown job messages counted: %v, want %v", unknownCount(t, "unknownjobs"), before+1)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Terminated (counted just before): gone from the stream soon after.
	for {
		n, err := p.queue.Pending(ctx)
		if err == nil && n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the unknown job's message is still in the stream (%d, %v)", n, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// unknownCount reads ferry_unknown_job_messages_total for target.
func unknownCount(t *testing.T, target string) float64 {
	t.Helper()
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "ferry_unknown_job_messages_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "target" && l.GetValue() == target {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// An installation upgraded from a ferry before installation ids: the jobs
// waiting in the old FERRY_JOBS stream are all delivered by the new
// version, through its own stream. During a rolling upgrade an old API
// process still publishes into FERRY_JOBS after the new stream exists;
// those jobs are delivered once a new process starts after it (each start
// republishes the waiting jobs while the old stream exists).
func TestUpgradeFromTheLegacyStream(t *testing.T) {
	t.Parallel()
	srv := testenv.NATS(t)
	ctx := testenv.Context(t)
	legacy, err := queue.Connect(srv.URL(), t.Name()+"-old")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(legacy.Close)
	if err := legacy.EnsureStream(ctx); err != nil {
		t.Fatal(err)
	}
	_, base := newSink(t, sink.Options{})
	// The old version: API and sweeper on FERRY_JOBS, no worker running.
	p := newPipeline(t, fmt.Sprintf("targets:\n  - {name: raw, kind: http, url: %q, method: PUT}\n", base+"/ok/raw"),
		pipelineOptions{noWorker: true, queue: legacy})
	old := p.uploadMany("old", 20)
	waitPublished(t, p, len(old))

	// The new version's first process.
	q, err := queue.Connect(srv.URL(), t.Name()+"-new")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(q.Close)
	p.queue = q
	p.useInstallation(ctx)
	_, found, err := q.LegacyStream(ctx)
	if err != nil || !found {
		t.Fatalf("legacy stream found %v (%v)", found, err)
	}
	startSweeper(t, p, found)
	p.startWorker(workerConfig())
	p.allSucceeded(old, time.Minute)

	// An old API process still running publishes into FERRY_JOBS; the
	// next new process to start republishes its jobs. (Later than the
	// sweeper's clock margin after the new stream was made: jobs published
	// within it are republished anyway.)
	st, err := q.Heal(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for time.Since(st.Created) < 11*time.Second {
		time.Sleep(100 * time.Millisecond)
	}
	late := p.uploadMany("late", 10)
	waitPublished(t, p, len(old)+len(late))
	startSweeper(t, p, found)
	p.allSucceeded(late, time.Minute)
}

// startSweeper runs a sweeper of the pipeline's (new) queue until the test
// ends, as a process of the new version starting.
func startSweeper(t *testing.T, p *pipeline, republishAtStart bool) {
	t.Helper()
	sw := sweeper.New(sweeper.Config{Interval: 100 * time.Millisecond, Grace: time.Second, RepublishAtStart: republishAtStart},
		sweeper.Deps{Jobs: p.jobs, Enqueue: enqueue.New(p.jobs, p.queue, p.log), Stream: p.queue, Log: p.log})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); sw.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

// waitPublished waits until n jobs are marked published.
func waitPublished(t *testing.T, p *pipeline, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var got int
		if err := p.pool.QueryRow(context.Background(), `SELECT count(*) FROM jobs WHERE enqueued_at IS NOT NULL`).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d jobs marked published", got, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
