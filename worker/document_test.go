package worker_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ferry-relay/ferry/internal/enqueue"
	"github.com/ferry-relay/ferry/internal/testenv"
	"github.com/ferry-relay/ferry/jobs"
	"github.com/ferry-relay/ferry/storage"
	"github.com/ferry-relay/ferry/sweeper"
	"github.com/ferry-relay/ferry/targets"
	"github.com/ferry-relay/ferry/worker"
)

// versioner is a connector that versions documents as support says, and
// records what each delivery was handed.
type versioner struct {
	support targets.VersionSupport

	mu   sync.Mutex
	seen []targets.Document
	// read is the bytes each delivery read, by version.
	read map[int]string
}

func (v *versioner) Versions() targets.VersionSupport { return v.support }

func (v *versioner) Deliver(ctx context.Context, d *targets.Delivery) (targets.Result, error) {
	doc := *d.Document
	var body string
	if !doc.Delete {
		rc, err := d.Open(ctx)
		if err != nil {
			return targets.Result{}, err
		}
		b, err := io.ReadAll(rc)
		_ = rc.Close()
		if err != nil {
			return targets.Result{}, err
		}
		body = string(b)
	}
	v.mu.Lock()
	v.seen = append(v.seen, doc)
	v.read[doc.Version] = body
	v.mu.Unlock()
	return targets.Result{RemoteID: "rv" + strconv.Itoa(doc.Version),
		Remote: map[string]string{"id": "remote-doc", "etag": "e" + strconv.Itoa(doc.Version)}}, nil
}

// docWorld is a worker over a target whose connector is v.
type docWorld struct {
	store   *jobs.Store
	objects *storage.Store
	enq     *enqueue.Enqueuer
}

func newDocWorld(t *testing.T, v *versioner) *docWorld {
	t.Helper()
	pool, _ := testenv.Postgres(t)
	store := jobs.NewStore(pool)
	objects := testenv.Storage(t)
	q := testenv.Queue(t)
	q.SetAckWait(5 * time.Second)
	ts := buildTargets(t, "targets:\n  - name: v\n    kind: http\n    url: http://127.0.0.1:1/\n    max_attempts: 3\n")
	ts["v"].Deliverer = v
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	enq := enqueue.New(store, q, log)
	sw := sweeper.New(sweeper.Config{Interval: 50 * time.Millisecond, Grace: 50 * time.Millisecond},
		sweeper.Deps{Jobs: store, Enqueue: enq, Log: log})
	w := worker.New(worker.Config{Lease: 5 * time.Second, ShutdownGrace: time.Second}, store, objects, q, ts, log)
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { sw.Run(ctx) })
	wg.Go(func() { _ = w.Run(ctx) })
	t.Cleanup(func() { stop(); wg.Wait() })
	return &docWorld{store: store, objects: objects, enq: enq}
}

// put stores data as the next version of key and queues it.
func (w *docWorld) put(t *testing.T, key, data string) jobs.Job {
	t.Helper()
	ctx := context.Background()
	id := uuid.Must(uuid.NewV7()).String()
	st, err := w.objects.Put(ctx, storage.KeyFor(id), bytes.NewReader([]byte(data)), int64(len(data)), 1<<20, "text/plain")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(data))
	out, _, err := w.store.RecordRequest(ctx, jobs.Request{Jobs: []jobs.New{{ID: id, Target: "v", Filename: "f.txt",
		ContentType: "text/plain", Size: st.Size, SHA256: hex.EncodeToString(sum[:]), ObjectKey: st.Key, MaxAttempts: 3, DocumentKey: key}}})
	if err != nil {
		t.Fatal(err)
	}
	w.enq.Enqueue(ctx, []jobs.Ref{jobs.RefOf(out[0])})
	return out[0]
}

func (w *docWorld) final(t *testing.T, id string) jobs.Job {
	t.Helper()
	var j jobs.Job
	waitFor(t, 20*time.Second, "job "+id+" final", func() bool {
		var err error
		j, err = w.store.Get(context.Background(), jobs.AllTenants(), id)
		return err == nil && j.Status.Final()
	})
	return j
}

// The connector gets the document with what it reported before; a delete
// opens no file; the document keeps the connector's report.
func TestWorkerHandsDocumentsToConnector(t *testing.T) {
	t.Parallel()
	v := &versioner{support: targets.VersionSupport{Update: true, Delete: true}, read: map[int]string{}}
	w := newDocWorld(t, v)
	ctx := context.Background()
	v1 := w.put(t, "a/b.txt", "one")
	if j := w.final(t, v1.ID); j.Status != jobs.StatusSuccess || j.RemoteID != "rv1" {
		t.Fatalf("v1: %+v", j)
	}
	v2 := w.put(t, "a/b.txt", "two")
	if j := w.final(t, v2.ID); j.Status != jobs.StatusSuccess {
		t.Fatalf("v2: %+v", j)
	}
	del, err := w.store.RecordDelete(ctx, jobs.DeleteRequest{Scope: jobs.AllTenants(), Tenant: jobs.TenantDefault, Target: "v", Key: "a/b.txt", MaxAttempts: 3})
	if err != nil {
		t.Fatal(err)
	}
	w.enq.Enqueue(ctx, []jobs.Ref{jobs.RefOf(del)})
	if j := w.final(t, del.ID); j.Status != jobs.StatusSuccess {
		t.Fatalf("delete: %+v", j)
	}
	v.mu.Lock()
	seen := append([]targets.Document(nil), v.seen...)
	read := v.read
	v.mu.Unlock()
	if len(seen) != 3 || seen[0].Version != 1 || !seen[0].First() || seen[0].Key != "a/b.txt" || seen[0].ID != v1.DocumentID ||
		seen[1].Version != 2 || seen[1].Remote["etag"] != "e1" || !seen[2].Delete || seen[2].Remote["etag"] != "e2" {
		t.Fatalf("deliveries: %+v", seen)
	}
	if read[1] != "one" || read[2] != "two" {
		t.Fatalf("bytes read: %v", read)
	}
	d, err := w.store.GetDocument(ctx, jobs.AllTenants(), v1.DocumentID)
	if err != nil || d.State != jobs.DocumentDeleted || len(d.Remote) != 0 || d.CurrentVersion != 3 {
		t.Fatalf("document after the delete: %+v %v", d, err)
	}
}

// A connector that neither updates nor appends refuses a version after
// the first, with its reason; a delete where it has none fails too.
func TestWorkerRefusesVersionsConnectorCannotTake(t *testing.T) {
	t.Parallel()
	v := &versioner{support: targets.VersionSupport{Refusal: "versions are refused here: set versions: append"}, read: map[int]string{}}
	w := newDocWorld(t, v)
	v1 := w.put(t, "k", "one")
	if j := w.final(t, v1.ID); j.Status != jobs.StatusSuccess {
		t.Fatalf("v1: %+v", j)
	}
	v2 := w.put(t, "k", "two")
	j := w.final(t, v2.ID)
	if j.Status != jobs.StatusFailed || j.LastError != "versions are refused here: set versions: append" || j.Attempts != 1 {
		t.Fatalf("v2: %+v", j)
	}
	ctx := context.Background()
	del, err := w.store.RecordDelete(ctx, jobs.DeleteRequest{Scope: jobs.AllTenants(), Tenant: jobs.TenantDefault, Target: "v", Key: "k", MaxAttempts: 3})
	if err != nil {
		t.Fatal(err)
	}
	w.enq.Enqueue(ctx, []jobs.Ref{jobs.RefOf(del)})
	if j := w.final(t, del.ID); j.Status != jobs.StatusFailed {
		t.Fatalf("delete: %+v", j)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.seen) != 1 {
		t.Fatalf("%d deliveries reached the connector, want only v1", len(v.seen))
	}
}

// A connector that neither updates nor appends and gives no reason to
// refuse (the http kind's versions: none) gets each version as a file.
func TestWorkerDeliversVersionsAsFilesWithoutRefusal(t *testing.T) {
	t.Parallel()
	v := &versioner{read: map[int]string{}}
	w := newDocWorld(t, v)
	v1 := w.put(t, "k", "one")
	w.final(t, v1.ID)
	v2 := w.put(t, "k", "two")
	if j := w.final(t, v2.ID); j.Status != jobs.StatusSuccess {
		t.Fatalf("v2: %+v", j)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.read[2] != "two" {
		t.Fatalf("v2 read %q", v.read[2])
	}
}
