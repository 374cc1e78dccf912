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

	"github.com/ferry-relay/ferry/internal/fakes/sink"
	"github.com/ferry-relay/ferry/internal/installation"
	"github.com/ferry-relay/ferry/internal/testenv"
	"github.com/ferry-relay/ferry/jobs"
	"github.com/ferry-relay/ferry/queue"
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
