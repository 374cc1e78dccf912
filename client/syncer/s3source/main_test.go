package s3source_test

import (
	"bytes"
	"errors"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/minio/minio-go/v7"
	"go.uber.org/goleak"

	"github.com/ferry-relay/ferry/client/syncer/s3source"
	"github.com/ferry-relay/ferry/client/syncer/source"
	"github.com/ferry-relay/ferry/internal/testenv"
)

// Every goroutine a test starts (listings, NATS subscriptions, embedded
// servers) is gone when the tests end.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// bucket is a fresh bucket on the test MinIO, emptied and removed when
// the test ends, with a client to fill it.
type bucket struct {
	name   string
	client *minio.Client
}

func newBucket(t *testing.T) bucket {
	t.Helper()
	st := testenv.Storage(t)
	return bucket{name: st.Bucket(), client: st.Client()}
}

func (b bucket) put(t *testing.T, key, content string) {
	t.Helper()
	_, err := b.client.PutObject(testenv.Context(t), b.name, key, bytes.NewReader([]byte(content)),
		int64(len(content)), minio.PutObjectOptions{})
	if err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

func (b bucket) remove(t *testing.T, key string) {
	t.Helper()
	if err := b.client.RemoveObject(testenv.Context(t), b.name, key, minio.RemoveObjectOptions{}); err != nil {
		t.Fatalf("remove %s: %v", key, err)
	}
}

// config is a source on the test MinIO.
func config(bucket, prefix string) s3source.Config {
	c := testenv.S3Config()
	return s3source.Config{Endpoint: c.Endpoint, Bucket: bucket, Prefix: prefix, AccessKey: c.AccessKey, SecretKey: c.SecretKey}
}

func open(t *testing.T, cfg s3source.Config) *s3source.Source {
	t.Helper()
	s, err := s3source.New(testenv.Context(t), cfg)
	if err != nil {
		t.Fatalf("new: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// walk returns what a Walk sees, by path.
func walk(t *testing.T, s source.Source) map[string]source.Entry {
	t.Helper()
	seen := map[string]source.Entry{}
	err := s.Walk(testenv.Context(t), func(e source.Entry) error {
		if _, dup := seen[e.Path]; dup {
			t.Errorf("walk: %s seen twice", e.Path)
		}
		seen[e.Path] = e
		return nil
	})
	if err != nil {
		t.Fatalf("walk: %v", err)
	}
	return seen
}

func paths(m map[string]source.Entry) []string {
	var p []string
	for k := range m {
		p = append(p, k)
	}
	slices.Sort(p)
	return p
}

// countingTransport counts the listing requests (ListObjectsV2) of a
// prefix that go through it.
type countingTransport struct {
	next   *http.Transport
	prefix string
	lists  atomic.Int64
}

func newCountingTransport(t *testing.T, prefix string) *countingTransport {
	c := &countingTransport{next: &http.Transport{}, prefix: prefix}
	t.Cleanup(c.next.CloseIdleConnections)
	return c
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if q := r.URL.Query(); q.Get("list-type") == "2" && q.Get("prefix") == c.prefix {
		c.lists.Add(1)
	}
	return c.next.RoundTrip(r)
}

func isGone(err error) bool { return errors.Is(err, source.ErrGone) }
