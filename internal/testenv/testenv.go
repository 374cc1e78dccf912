// Package testenv gives tests real components, isolated per test: a fresh
// Postgres schema, an embedded NATS JetStream server, and a MinIO bucket.
//
// The Postgres and MinIO to use come from FERRY_TEST_DATABASE_URL and
// FERRY_TEST_S3_ENDPOINT (defaults: the loopback services scripts/stack.sh
// starts). A missing service fails the test: these tests never mock them.
package testenv

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/minio/minio-go/v7"

	"github.com/ferry-relay/ferry/internal/natsserver"
	"github.com/ferry-relay/ferry/migrations"
	"github.com/ferry-relay/ferry/queue"
	"github.com/ferry-relay/ferry/storage"
)

// DatabaseURL is the database tests create their schemas in.
func DatabaseURL() string {
	return cmp.Or(os.Getenv("FERRY_TEST_DATABASE_URL"), "postgres://postgres:postgres@127.0.0.1:5432/ferry?sslmode=disable")
}

func randomName(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// Context returns a context canceled at the end of the test, bounded to a
// minute or the test's deadline.
func Context(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// Postgres creates a schema of its own for the test, migrates it, and
// returns a pool whose connections use it, and the URL to it. The schema is
// dropped when the test ends.
func Postgres(t testing.TB) (*pgxpool.Pool, string) {
	t.Helper()
	ctx := Context(t)
	admin, err := pgxpool.New(ctx, DatabaseURL())
	if err != nil {
		t.Fatalf("postgres: %v", err)
	}
	defer admin.Close()
	if err := admin.Ping(ctx); err != nil {
		t.Fatalf("postgres at %s is not reachable (run scripts/stack.sh up): %v", DatabaseURL(), err)
	}
	schema := randomName("test_")
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		a, err := pgxpool.New(ctx, DatabaseURL())
		if err == nil {
			_, _ = a.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE")
			a.Close()
		}
	})
	u, _ := url.Parse(DatabaseURL())
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	dbURL := u.String()
	if err := migrations.Up(dbURL); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatalf("postgres: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool, dbURL
}

// NATS starts an embedded NATS server with JetStream storing in a temporary
// directory, and returns it; it stops when the test ends.
func NATS(t testing.TB) *natsserver.Server {
	t.Helper()
	e, err := natsserver.Start(t.TempDir(), "127.0.0.1", -1)
	if err != nil {
		t.Fatalf("nats: %v", err)
	}
	t.Cleanup(e.Shutdown)
	return e
}

// Queue connects to a fresh embedded NATS server and creates the stream.
func Queue(t testing.TB) *queue.Queue {
	t.Helper()
	e := NATS(t)
	q, err := queue.Connect(e.URL(), t.Name())
	if err != nil {
		t.Fatalf("nats connect: %v", err)
	}
	t.Cleanup(q.Close)
	if err := q.EnsureStream(Context(t)); err != nil {
		t.Fatalf("stream: %v", err)
	}
	return q
}

// S3Config is the MinIO tests use, with a fresh bucket name.
func S3Config() storage.Config {
	return storage.Config{
		Endpoint:  cmp.Or(os.Getenv("FERRY_TEST_S3_ENDPOINT"), "127.0.0.1:9000"),
		AccessKey: cmp.Or(os.Getenv("FERRY_TEST_S3_ACCESS_KEY"), "minioadmin"),
		SecretKey: cmp.Or(os.Getenv("FERRY_TEST_S3_SECRET_KEY"), "minioadmin"),
		Bucket:    randomName("ferry-test-"),
	}
}

// Storage creates a bucket of its own for the test; it is emptied and
// removed when the test ends. opts adjust the store's configuration.
func Storage(t testing.TB, opts ...func(*storage.Config)) *storage.Store {
	t.Helper()
	cfg := S3Config()
	for _, o := range opts {
		o(&cfg)
	}
	s, err := storage.Open(Context(t), cfg)
	if err != nil {
		t.Fatalf("minio at %s (run scripts/stack.sh up): %v", cfg.Endpoint, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		c := s.Client()
		for obj := range c.ListObjects(ctx, cfg.Bucket, minio.ListObjectsOptions{Recursive: true}) {
			if obj.Err == nil {
				_ = c.RemoveObject(ctx, cfg.Bucket, obj.Key, minio.RemoveObjectOptions{})
			}
		}
		_, _ = s.AbortIncomplete(ctx, "", 0)
		_ = c.RemoveBucket(ctx, cfg.Bucket)
		s.Close()
	})
	return s
}
