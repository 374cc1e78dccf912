package sweeper_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/minio/minio-go/v7"

	"github.com/ferry-relay/ferry/internal/testenv"
	"github.com/ferry-relay/ferry/jobs"
	"github.com/ferry-relay/ferry/storage"
	"github.com/ferry-relay/ferry/sweeper"
)

// TestCleanRemovesOrphans checks that a stored file whose job was never
// recorded (the API died in between) is removed, and a job's file is kept.
func TestCleanRemovesOrphans(t *testing.T) {
	t.Parallel()
	pool, _ := testenv.Postgres(t)
	store := jobs.NewStore(pool)
	objects := testenv.Storage(t)
	ctx := testenv.Context(t)

	kept := uuid.Must(uuid.NewV7()).String()
	orphan := uuid.Must(uuid.NewV7()).String()
	for _, id := range []string{kept, orphan} {
		if _, err := objects.Put(ctx, storage.KeyFor(id), bytes.NewReader([]byte("x")), 1, 10, "text/plain"); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := store.Create(ctx, jobs.New{ID: kept, Target: "t", Filename: "f", ContentType: "text/plain",
		Size: 1, SHA256: "x", ObjectKey: storage.KeyFor(kept), MaxAttempts: 1}); err != nil {
		t.Fatal(err)
	}
	// Any age counts as abandoned here: both files are older than a
	// nanosecond, so only the job decides which one stays.
	sw := sweeper.New(sweeper.Config{AbandonedAfter: time.Nanosecond}, sweeper.Deps{Jobs: store, Objects: objects, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	sw.Clean(ctx)
	if _, err := objects.Open(context.Background(), storage.KeyFor(orphan)); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("the orphaned file is still stored (%v)", err)
	}
	r, err := objects.Open(context.Background(), storage.KeyFor(kept))
	if err != nil {
		t.Fatalf("the job's file was removed: %v", err)
	}
	r.Close()
}

// An upload whose request died mid-way (its marker no longer renewed) has
// its multipart upload aborted in MinIO and its marker removed; a file of
// an upload still in progress (marker renewed) is kept by the orphan sweep
// however old it is.
func TestCleanAbortsDeadUploadsAndKeepsLiveOnes(t *testing.T) {
	t.Parallel()
	pool, _ := testenv.Postgres(t)
	store := jobs.NewStore(pool)
	objects := testenv.Storage(t)
	ctx := testenv.Context(t)
	dead, live := storage.KeyFor(uuid.Must(uuid.NewV7()).String()), storage.KeyFor(uuid.Must(uuid.NewV7()).String())
	core := minio.Core{Client: objects.Client()}
	if _, err := core.NewMultipartUpload(ctx, objects.Bucket(), dead, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := objects.Put(ctx, live, bytes.NewReader([]byte("still coming")), 12, 100, "text/plain"); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{dead, live} {
		if err := store.BeginUpload(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := pool.Exec(ctx, `UPDATE uploads_in_progress SET alive_at = now() - interval '2 hours' WHERE object_key = $1`, dead); err != nil {
		t.Fatal(err)
	}
	// Both must be older than AbandonedAfter, so that only the markers
	// decide: wait until storage itself sees them so (S3 times have a
	// resolution of one second).
	testenv.WaitFor(t, 10*time.Second, "the dead upload and the live file are older than a second", func() bool {
		keys, _, err := objects.OldKeys(ctx, "objects/", "", time.Second, 100)
		if err != nil {
			t.Fatal(err)
		}
		for up := range objects.Client().ListIncompleteUploads(ctx, objects.Bucket(), dead, false) {
			if up.Err != nil || time.Since(up.Initiated) <= time.Second {
				return false
			}
		}
		return slices.Contains(keys, live)
	})
	if err := store.KeepUploading(ctx, live); err != nil {
		t.Fatal(err)
	}
	sw := sweeper.New(sweeper.Config{AbandonedAfter: time.Second}, sweeper.Deps{Jobs: store, Objects: objects, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	sw.Clean(ctx)
	for up := range objects.Client().ListIncompleteUploads(ctx, objects.Bucket(), dead, false) {
		t.Errorf("multipart upload of the dead request still open: %+v", up)
	}
	r, err := objects.Open(context.Background(), live)
	if err != nil {
		t.Fatalf("the file of an upload in progress was removed: %v", err)
	}
	r.Close()
	var markers []string
	rows, _ := pool.Query(ctx, `SELECT object_key FROM uploads_in_progress ORDER BY object_key`)
	for rows.Next() {
		var k string
		_ = rows.Scan(&k)
		markers = append(markers, k)
	}
	rows.Close()
	if len(markers) != 1 || markers[0] != live {
		t.Errorf("markers left %v, want only the live one", markers)
	}
}
