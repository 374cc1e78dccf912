package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/minio/minio-go/v7"

	"github.com/ferry-relay/ferry/jobs"
	"github.com/ferry-relay/ferry/storage"
)

// FuzzUpload sends whatever the fuzzer makes as an upload, multipart or
// raw, to the real handler over HTTP, on real Postgres, MinIO and NATS.
// Whatever the body (truncated, odd boundaries, part headers, filenames):
// the answer is never a 5xx; a 202 is a promise (every job recorded, its
// object stored with the size and digest the job says); a refusal leaves
// no job and no object.
func FuzzUpload(f *testing.F) {
	us := newUploadServer(f, 1<<20)
	pool, objects, key := us.pool, us.objects, us.key
	store := jobs.NewStore(pool)

	client := &http.Client{Timeout: 10 * time.Second}
	f.Fuzz(func(t *testing.T, raw bool, query, contentType string, body []byte) {
		path := "/v1/uploads"
		if raw {
			path += "?" + query
		}
		req, err := http.NewRequest(http.MethodPost, us.url+path, bytes.NewReader(body))
		if err != nil {
			return // not a request a client could send
		}
		req.Header.Set("Content-Type", contentType)
		req.Header.Set("Authorization", "Bearer "+key)
		jobsBefore, objectsBefore := count(t, pool, objects)
		resp, err := client.Do(req)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("no answer within %s: %v", client.Timeout, err)
			}
			return
		}
		answer, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			t.Fatalf("answered %d: %s", resp.StatusCode, answer)
		}
		if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusOK {
			if j, o := count(t, pool, objects); j != jobsBefore || o != objectsBefore {
				t.Fatalf("refused with %d, but jobs went %d→%d and objects %d→%d", resp.StatusCode, jobsBefore, j, objectsBefore, o)
			}
			return
		}
		var out struct {
			Jobs []struct {
				ID     string
				Size   int64
				SHA256 string `json:"sha256"`
			}
		}
		if err := json.Unmarshal(answer, &out); err != nil || len(out.Jobs) == 0 {
			t.Fatalf("accepted with an answer that names no job: %s", answer)
		}
		for _, j := range out.Jobs {
			job, err := store.Get(context.Background(), jobs.AllTenants(), j.ID)
			if err != nil {
				t.Fatalf("accepted job %s is not recorded: %v", j.ID, err)
			}
			info, err := objects.Client().StatObject(context.Background(), objects.Bucket(), job.ObjectKey, minio.StatObjectOptions{})
			if err != nil || info.Size != job.Size {
				t.Fatalf("accepted job %s: object %v (size %d, job says %d)", j.ID, err, info.Size, job.Size)
			}
		}
	})
}

// count returns how many jobs and stored objects there are.
func count(t *testing.T, pool *pgxpool.Pool, objects *storage.Store) (int, int) {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM jobs`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	o := 0
	for obj := range objects.Client().ListObjects(context.Background(), objects.Bucket(), minio.ListObjectsOptions{Recursive: true}) {
		if obj.Err != nil {
			t.Fatal(obj.Err)
		}
		o++
	}
	return n, o
}
