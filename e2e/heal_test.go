package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferry-relay/ferry/internal/fakes/sink"
	"github.com/ferry-relay/ferry/internal/natsserver"
	"github.com/ferry-relay/ferry/jobs"
	"github.com/ferry-relay/ferry/queue"
	"github.com/ferry-relay/ferry/worker"
)

// NATS killed, its store deleted and restarted while 12 jobs wait: the
// stream and consumers are rebuilt and every waiting job is republished
// from Postgres, so all 12 end SUCCESS within a minute. Then a consumer
// deleted under a running worker is recreated.
func TestQueueRebuiltAfterNATSLosesItsStore(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "nats")
	srv, err := natsserver.Start(dir, "127.0.0.1", -1)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(srv.URL())
	port, _ := strconv.Atoi(u.Port())
	q, err := queue.Connect(srv.URL(), t.Name())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(q.Close)
	if err := q.EnsureStream(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, base := newSink(t, sink.Options{})
	p := newPipeline(t, fmt.Sprintf("targets:\n  - {name: raw, kind: http, url: %q, method: PUT}\n", base+"/ok/raw"),
		pipelineOptions{noWorker: true, queue: q})
	var waiting []string
	for i := range 12 {
		code, body := p.rawUpload("raw", file{name: fmt.Sprintf("f%d.txt", i), data: []byte(fmt.Sprintf("file %d", i))}, nil)
		if code != http.StatusAccepted {
			t.Fatalf("upload: %d %s", code, body)
		}
		js := p.decodeJobs(body)
		waiting = append(waiting, js[0].ID)
	}
	if n, err := q.Pending(context.Background()); err != nil || n != 12 {
		t.Fatalf("stream holds %d messages (%v), want 12", n, err)
	}

	token, err := natsserver.Token(dir)
	if err != nil {
		t.Fatal(err)
	}
	srv.Shutdown()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	// The store is lost; the clients' credentials are not.
	srv, err = natsserver.StartWithToken(dir, "127.0.0.1", port, token)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	start := time.Now()
	p.startWorker(workerConfig())
	p.waitFinal(waiting, time.Minute)
	t.Logf("12 jobs SUCCESS %s after NATS came back without its store", time.Since(start).Round(time.Millisecond))
	for _, id := range waiting {
		if j, _ := p.jobs.Get(context.Background(), jobs.AllTenants(), id); j.Status != "SUCCESS" {
			t.Errorf("job %s %s: %s", id, j.Status, j.LastError)
		}
	}

	// A consumer deleted under a running worker.
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	if err := js.DeleteConsumer(context.Background(), q.StreamName(), queue.ConsumerName("raw")); err != nil {
		t.Fatal(err)
	}
	code, body := p.rawUpload("raw", file{name: "after.txt", data: []byte("after")}, nil)
	if code != http.StatusAccepted {
		t.Fatalf("upload: %d %s", code, body)
	}
	p.waitFinal([]string{p.decodeJobs(body)[0].ID}, time.Minute)
}

// decodeJobs reads the jobs of an upload's answer.
func (p *pipeline) decodeJobs(body []byte) []jobView {
	p.t.Helper()
	var out struct{ Jobs []jobView }
	if err := json.Unmarshal(body, &out); err != nil || len(out.Jobs) == 0 {
		p.t.Fatalf("upload answer %s: %v", body, err)
	}
	return out.Jobs
}

func workerConfig() worker.Config {
	return worker.Config{Lease: 3 * time.Second, ShutdownGrace: 5 * time.Second}
}
