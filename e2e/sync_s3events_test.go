package e2e

import (
	"context"
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/notification"
	"github.com/nats-io/nats.go"

	"github.com/ferry-relay/ferry/client/syncer"
	"github.com/ferry-relay/ferry/client/syncer/s3source"
	"github.com/ferry-relay/ferry/internal/natsserver"
	"github.com/ferry-relay/ferry/internal/testenv"
)

// eventsSubject is where the private MinIO publishes its notifications.
const eventsSubject = "minio.bucket-events"

// eventsWithin is how soon a change must reach the target: rescans are
// 10 minutes apart, so only a notification explains a pickup this quick.
const eventsWithin = 15 * time.Second

// minioWithNATS starts an embedded NATS server and a private MinIO
// publishing its bucket notifications there (target id "FERRY", set by
// MinIO's environment variables, see
// https://min.io/docs/minio/linux/reference/minio-server/settings/notifications/nats.html),
// creates the buckets and subscribes each to its object created and
// removed events. It returns MinIO and the NATS server.
func minioWithNATS(t *testing.T, buckets ...string) (*privateMinIO, *natsserver.Server) {
	t.Helper()
	ns := testenv.NATS(t)
	u, err := url.Parse(ns.URL())
	if err != nil || u.User == nil {
		t.Fatalf("nats url %s: %v", ns.Addr(), err)
	}
	m := startMinIO(t,
		"MINIO_NOTIFY_NATS_ENABLE_FERRY=on",
		"MINIO_NOTIFY_NATS_ADDRESS_FERRY="+u.Host,
		"MINIO_NOTIFY_NATS_SUBJECT_FERRY="+eventsSubject,
		"MINIO_NOTIFY_NATS_TOKEN_FERRY="+u.User.Username())
	for _, b := range buckets {
		m.MakeBucket(t, b)
		notifyBucket(t, m, b)
	}
	return m, ns
}

// notifyBucket has MinIO publish the object created and removed events
// of bucket to its NATS target.
func notifyBucket(t *testing.T, m *privateMinIO, bucket string) {
	t.Helper()
	arn := notification.NewArn("minio", "sqs", "", "FERRY", "nats")
	q := notification.NewConfig(arn)
	q.AddEvents(notification.ObjectCreatedAll, notification.ObjectRemovedAll)
	var cfg notification.Configuration
	cfg.AddQueue(q)
	// MinIO may answer before its targets are loaded: "A specified
	// destination ARN does not exist" for a moment.
	var err error
	if !waitCond(30*time.Second, func() bool {
		err = m.Client.SetBucketNotification(context.Background(), bucket, cfg)
		return err == nil
	}) {
		t.Fatalf("notifications of %s to %s: %v\n%s", bucket, arn, err, m.out.String())
	}
}

// published records the object keys ("bucket/key") of the notifications
// MinIO publishes, as any subscriber sees them: proof that a notification
// the sync ignored was sent.
type published struct {
	mu   sync.Mutex
	keys []string
}

func subscribePublished(t *testing.T, natsURL string) *published {
	t.Helper()
	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	p := &published{}
	_, err = nc.Subscribe(eventsSubject, func(m *nats.Msg) {
		var n struct{ Key string } // MinIO's top-level Key: bucket/key, not escaped
		_ = json.Unmarshal(m.Data, &n)
		p.mu.Lock()
		p.keys = append(p.keys, n.Key)
		p.mu.Unlock()
	})
	if err == nil {
		err = nc.Flush()
	}
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (p *published) all() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.keys)
}

func (p *published) has(key string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Contains(p.keys, key)
}

// hints records what Events handed the engine.
type hints struct {
	mu    sync.Mutex
	paths []string
}

func (h *hints) add(paths []string) {
	h.mu.Lock()
	h.paths = append(h.paths, paths...)
	h.mu.Unlock()
}

func (h *hints) all() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.paths)
}

// TestSyncS3Events: real MinIO bucket notifications through NATS
// (--s3-events) carry new, overwritten and deleted objects of the prefix
// to the target within seconds, while the listing runs every 10 minutes;
// notifications of another bucket or outside the prefix hint nothing.
func TestSyncS3Events(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: starts a MinIO of its own")
	}
	const bucket, other = "sync-src", "sync-other"
	m, ns := minioWithNATS(t, bucket, other)
	natsURL := ns.URL()
	pub := subscribePublished(t, natsURL)
	put := func(b, key, content string) time.Time {
		t.Helper()
		at := time.Now()
		if _, err := m.Client.PutObject(context.Background(), b, key, strings.NewReader(content), int64(len(content)), minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
		return at
	}
	put(bucket, "in/a.txt", "a1")

	e := newSyncEnv(t)
	src, err := s3source.New(context.Background(), s3source.Config{Endpoint: m.Endpoint, Bucket: bucket, Prefix: "in",
		AccessKey: privateMinIOUser, SecretKey: privateMinIOPassword, Log: e.p.log})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var rescans sync.Map
	eng, closeIt := e.engineOf(src, syncer.Options{Interval: 10 * time.Minute, Delete: true,
		MaxDelete: syncer.DeleteLimit{Percent: 100},
		OnEvent: func(ev syncer.Event) {
			if ev.Kind == syncer.EventRescan {
				rescans.Store(ev.Time, ev.Message)
			}
		}})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	h := &hints{}
	wg.Go(func() {
		if err := eng.Run(ctx); err != nil {
			t.Errorf("run: %v", err)
		}
	})
	// Wired as ferry sync --s3-events wires it (cmd/ferry/sync_hints.go).
	wg.Go(func() {
		if err := src.Events(ctx, natsURL, eventsSubject, func(p []string) { h.add(p); eng.Touch(p...) }); err != nil {
			t.Errorf("events: %v", err)
		}
	})
	defer func() { cancel(); wg.Wait(); closeIt() }()
	want := map[string][]string{"a.txt": {"a1"}}
	e.waitTarget(want, 60*time.Second) // the first full pass

	// The subscription is in place once a notification arrives: put
	// (again, same bytes: nothing more to send) until one does.
	testenv.WaitFor(t, 30*time.Second, "a first notification", func() bool {
		put(bucket, "in/ready.txt", "ready")
		return waitCond(2*time.Second, func() bool { return slices.Contains(h.all(), "ready.txt") })
	})
	want["ready.txt"] = []string{"ready"}
	e.waitTarget(want, eventsWithin)

	step := func(what string, at time.Time) {
		t.Helper()
		e.waitTarget(want, eventsWithin)
		t.Logf("%s: at the target %s after the change", what, time.Since(at).Round(time.Millisecond))
	}
	at := put(bucket, "in/b.txt", "b1")
	put(bucket, "in/sub dir/ü+&=%.txt", "odd key")
	want["b.txt"], want["sub dir/ü+&=%.txt"] = []string{"b1"}, []string{"odd key"}
	step("new objects", at)

	at = put(bucket, "in/b.txt", "b2")
	want["b.txt"] = []string{"b1", "b2"}
	step("an overwrite", at)

	put(bucket, "in/b.txt", "b2") // the same bytes again: no new version
	at = time.Now()
	if err := m.Client.RemoveObject(context.Background(), bucket, "in/a.txt", minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	delete(want, "a.txt")
	step("a delete", at)

	// Another bucket, and keys of this one outside the prefix: MinIO
	// publishes them, the sync is not told. A last object of the prefix
	// marks the end (notifications of one publisher arrive in order).
	put(other, "in/a.txt", "other bucket")
	put(bucket, "inbox/c.txt", "outside the prefix")
	put(bucket, "c.txt", "outside the prefix")
	at = put(bucket, "in/z.txt", "z")
	want["z.txt"] = []string{"z"}
	step("a last object", at)
	for _, k := range []string{other + "/in/a.txt", bucket + "/inbox/c.txt", bucket + "/c.txt", bucket + "/in/z.txt"} {
		if !waitCond(10*time.Second, func() bool { return pub.has(k) }) {
			t.Errorf("MinIO published no notification of %s (published: %q)", k, pub.all())
		}
	}
	for _, p := range h.all() {
		if !slices.Contains([]string{"ready.txt", "b.txt", "sub dir/ü+&=%.txt", "a.txt", "z.txt"}, p) {
			t.Errorf("a hint that is not the source's: %q (all: %q)", p, h.all())
		}
	}
	n := 0
	rescans.Range(func(_, _ any) bool { n++; return true })
	if n != 1 {
		t.Errorf("%d full rescans, want only the first: the pickups were not the notifications'", n)
	}
	e.waitTarget(want, time.Second)
}

// waitCond polls cond until it holds (true) or within has passed.
func waitCond(within time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}
