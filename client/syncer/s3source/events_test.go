package s3source_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ferry-relay/ferry/internal/testenv"
)

// minioEvent is a notification as MinIO publishes it to NATS (one record,
// the key query-escaped in the record, plain in the top-level Key).
func minioEvent(bucket, key, name string) []byte {
	b, _ := json.Marshal(map[string]any{
		"EventName": name,
		"Key":       bucket + "/" + key,
		"Records": []any{map[string]any{
			"eventVersion": "2.0", "eventSource": "minio:s3", "eventName": name,
			"s3": map[string]any{
				"s3SchemaVersion": "1.0",
				"bucket":          map[string]any{"name": bucket, "arn": "arn:aws:s3:::" + bucket},
				"object":          map[string]any{"key": url.QueryEscape(key), "size": 3, "eTag": "abc", "sequencer": "1"},
			},
		}},
	})
	return b
}

// Notifications of the source's prefix reach onKeys as paths relative to
// it; other buckets, other prefixes, directory markers, skipped files and
// messages that are no notification do not.
func TestEvents(t *testing.T) {
	t.Parallel()
	b := newBucket(t)
	cfg := config(b.name, "in")
	cfg.Skip = func(rel string, isDir bool) bool { return !isDir && strings.HasSuffix(rel, ".tmp") }
	s := open(t, cfg)
	srv := testenv.NATS(t)
	const subject = "minio.events"

	var mu sync.Mutex
	var got [][]string
	ctx, cancel := context.WithCancel(testenv.Context(t))
	done := make(chan error, 1)
	arrived := make(chan struct{}, 1)
	go func() {
		done <- s.Events(ctx, srv.URL(), subject, func(paths []string) {
			mu.Lock()
			got = append(got, paths)
			mu.Unlock()
			if slices.Equal(paths, []string{"last.txt"}) {
				select {
				case arrived <- struct{}{}:
				default:
				}
			}
		})
	}()

	pub, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer pub.Close()
	ignored := [][]byte{
		minioEvent("other-bucket", "in/a.txt", "s3:ObjectCreated:Put"),
		minioEvent(b.name, "out/a.txt", "s3:ObjectCreated:Put"),
		minioEvent(b.name, "inbox/a.txt", "s3:ObjectCreated:Put"),
		minioEvent(b.name, "in/sub/", "s3:ObjectCreated:Put"),
		minioEvent(b.name, "in/x.tmp", "s3:ObjectCreated:Put"),
		[]byte("not json"),
		[]byte(`{"Records":[{"s3":{"object":{"key":"in%zz"}}}]}`),
	}
	wanted := [][]byte{
		minioEvent(b.name, "in/sub dir/ü+&.txt", "s3:ObjectCreated:CompleteMultipartUpload"),
		minioEvent(b.name, "in/gone.txt", "s3:ObjectRemoved:Delete"),
	}
	last := minioEvent(b.name, "in/last.txt", "s3:ObjectCreated:Put")
	// The subscription may not be there yet: publish until the last one
	// of a round arrives (notifications are lost and repeated by design).
	testenv.WaitFor(t, 30*time.Second, "the notifications arrive", func() bool {
		for _, m := range append(append(ignored, wanted...), last) {
			if err := pub.Publish(subject, m); err != nil {
				t.Fatalf("publish: %v", err)
			}
		}
		if err := pub.Flush(); err != nil {
			t.Fatalf("flush: %v", err)
		}
		select {
		case <-arrived:
			return true
		case <-time.After(200 * time.Millisecond):
			return false
		}
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("events: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	// The rounds before the subscription was in place are lost; one that
	// arrived is whole and in order.
	want := [][]string{{"sub dir/ü+&.txt"}, {"gone.txt"}, {"last.txt"}}
	whole := false
	for i := 0; i+len(want) <= len(got) && !whole; i++ {
		whole = slices.EqualFunc(got[i:i+len(want)], want, slices.Equal)
	}
	if !whole {
		t.Errorf("got %q, want a round of %q", got, want)
	}
	for _, paths := range got {
		for _, p := range paths {
			if !slices.Contains([]string{"sub dir/ü+&.txt", "gone.txt", "last.txt"}, p) {
				t.Errorf("a path that is not the source's: %q", p)
			}
		}
	}
}

// A NATS server that cannot be reached is an error at once, and the
// error does not show the URL's password.
func TestEventsUnreachable(t *testing.T) {
	t.Parallel()
	b := newBucket(t)
	var logged bytes.Buffer
	cfg := config(b.name, "")
	cfg.Log = slog.New(slog.NewTextHandler(&logged, nil))
	s := open(t, cfg)
	err := s.Events(testenv.Context(t), "nats://ferry:hunter2@127.0.0.1:1", "x", func([]string) {})
	if err == nil {
		t.Fatal("no error")
	}
	if strings.Contains(err.Error()+logged.String(), "hunter2") {
		t.Errorf("the password is shown: %v %s", err, logged.String())
	}
}
