package api_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/minio/minio-go/v7"

	"github.com/ferry-relay/ferry/api"
	"github.com/ferry-relay/ferry/apitypes"
	"github.com/ferry-relay/ferry/client"
	"github.com/ferry-relay/ferry/internal/apikeys"
	"github.com/ferry-relay/ferry/internal/enqueue"
	"github.com/ferry-relay/ferry/internal/hashchain"
	"github.com/ferry-relay/ferry/internal/testenv"
	"github.com/ferry-relay/ferry/jobs"
	"github.com/ferry-relay/ferry/storage"
	"github.com/ferry-relay/ferry/targets"
	"github.com/ferry-relay/ferry/targets/httptarget"
)

// sessionEnv is two API servers (two processes, as behind a load
// balancer) over one schema, bucket and NATS server, with target "t".
type sessionEnv struct {
	urls    []string
	servers []*httptest.Server
	key     string
	keys    *apikeys.Store
	pool    *pgxpool.Pool
	objects *storage.Store
	store   *jobs.Store
}

func newSessionEnv(t *testing.T, cfg api.Config) sessionEnv {
	t.Helper()
	pool, _ := testenv.Postgres(t)
	e := sessionEnv{pool: pool, objects: testenv.Storage(t), store: jobs.NewStore(pool), keys: apikeys.NewStore(pool)}
	var err error
	if e.key, err = e.keys.Create(context.Background(), "uploads"); err != nil {
		t.Fatal(err)
	}
	cfgs, err := targets.ParseFile(strings.NewReader("targets:\n  - {name: t, kind: http, url: \"http://127.0.0.1:1/\"}\n"),
		func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	set, err := targets.Build(cfgs, map[string]targets.Constructor{"http": httptarget.New})
	if err != nil {
		t.Fatal(err)
	}
	logTo := io.Writer(io.Discard)
	if os.Getenv("FERRY_TEST_LOG") != "" {
		logTo = os.Stderr
	}
	log := slog.New(slog.NewTextHandler(logTo, nil))
	q := testenv.Queue(t)
	for range 2 {
		srv := api.New(cfg, api.Deps{Jobs: e.store, Keys: e.keys, Objects: e.objects,
			Enqueue: enqueue.New(e.store, q, log), Targets: set, Log: log})
		ts := httptest.NewServer(srv.Handler())
		t.Cleanup(ts.Close)
		e.urls, e.servers = append(e.urls, ts.URL), append(e.servers, ts)
	}
	return e
}

func (e sessionEnv) client(t *testing.T, i int, key string) *client.Client {
	t.Helper()
	c, err := client.New(e.urls[i], key, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// randomFile is n reproducible bytes.
func randomFile(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, seed))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func sum(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// sendParts sends the parts of data in the order given, alternately to
// the two servers, with the hash chain when chained.
func (e sessionEnv) sendParts(t *testing.T, ss apitypes.UploadSession, data []byte, order []int, chained bool) {
	t.Helper()
	ctx := testenv.Context(t)
	for i, n := range order {
		off := int64(n-1) * ss.PartSize
		end := min(off+ss.PartSize, int64(len(data)))
		chain := ""
		if chained {
			h, _ := hashchain.Resume(hashchain.Initial(), 0)
			h.Write(data[:off])
			chain, _ = hashchain.State(h)
		}
		if err := e.client(t, i%2, e.key).PutPart(ctx, ss.ID, n, data[off:end], chain); err != nil {
			t.Fatalf("part %d: %v", n, err)
		}
	}
}

// A file in parts sent out of order, alternately through two API
// processes, becomes one job whose object holds exactly the file: proven
// by the hash chain, or, without it, by reading the file back.
func TestSessionPartsThroughTwoProcesses(t *testing.T) {
	t.Parallel()
	e := newSessionEnv(t, api.Config{})
	ctx := testenv.Context(t)
	data := randomFile(40<<20+5, 1)
	for _, chained := range []bool{true, false} {
		t.Run(fmt.Sprintf("chained=%v", chained), func(t *testing.T) {
			c := e.client(t, 0, e.key)
			ss, err := c.StartSession(ctx, apitypes.NewUploadSession{Target: "t", Filename: "big.bin", Size: int64(len(data))}, "")
			if err != nil {
				t.Fatal(err)
			}
			if ss.Parts != 3 || ss.PartSize != 16<<20 || len(ss.Missing) != 3 {
				t.Fatalf("session %+v: want 3 parts of 16 MiB, all missing", ss)
			}
			e.sendParts(t, ss, data, []int{3, 1, 2}, chained)
			job, created, err := e.client(t, 1, e.key).CompleteSession(ctx, ss.ID, sum(data))
			if err != nil || !created {
				t.Fatalf("complete: created %v, %v", created, err)
			}
			if job.SHA256 != sum(data) || job.Size != int64(len(data)) || job.Status != apitypes.StatusQueued {
				t.Fatalf("job %+v", job)
			}
			assertObject(t, e.objects, "sessions/"+job.ID, data)
			again, created, err := c.CompleteSession(ctx, ss.ID, "")
			if err != nil || created || again.ID != job.ID {
				t.Fatalf("completing again: %v created %v, %v; want the same job", again.ID, created, err)
			}
		})
	}
}

func assertObject(t *testing.T, objects *storage.Store, key string, want []byte) {
	t.Helper()
	rc, err := objects.Open(testenv.Context(t), key)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	h := sha256.New()
	n, err := io.Copy(h, rc)
	if err != nil || n != int64(len(want)) || hex.EncodeToString(h.Sum(nil)) != sum(want) {
		t.Fatalf("object %s: %d bytes, %v; want the file's %d bytes", key, n, err, len(want))
	}
}

// Resume: the same Idempotency-Key finds the session, which lists what is
// missing; only those parts are sent again, and the session's counter of
// bytes received proves it.
func TestSessionResumesByIdempotencyKey(t *testing.T) {
	t.Parallel()
	e := newSessionEnv(t, api.Config{})
	ctx := testenv.Context(t)
	data := randomFile(50<<20, 2)
	c := e.client(t, 0, e.key)
	req := apitypes.NewUploadSession{Target: "t", Filename: "big.bin", Size: int64(len(data)), SHA256: sum(data)}
	ss, err := c.StartSession(ctx, req, "resume-key")
	if err != nil {
		t.Fatal(err)
	}
	e.sendParts(t, ss, data, []int{1, 3}, true) // cut off after two of four parts
	found, err := e.client(t, 1, e.key).StartSession(ctx, req, "resume-key")
	if err != nil || found.ID != ss.ID {
		t.Fatalf("the key found session %q (%v), want %q", found.ID, err, ss.ID)
	}
	if fmt.Sprint(found.Missing) != "[2 4]" {
		t.Fatalf("missing %v, want [2 4]", found.Missing)
	}
	e.sendParts(t, found, data, found.Missing, true)
	if _, _, err := c.CompleteSession(ctx, ss.ID, ""); err != nil {
		t.Fatal(err)
	}
	done, err := c.Session(ctx, ss.ID)
	if err != nil || done.State != "completed" || done.BytesReceived != int64(len(data)) {
		t.Fatalf("after completion: %+v, %v; want completed with %d bytes received once", done, err, len(data))
	}
	other := req
	other.Size++
	if _, err := c.StartSession(ctx, other, "resume-key"); statusOf(err) != http.StatusConflict {
		t.Fatalf("the key for another file: %v, want 409", err)
	}
}

func statusOf(err error) int {
	var ce *client.Error
	if errors.As(err, &ce) {
		return ce.StatusCode
	}
	return 0
}

// Every bad input is a clear 4xx naming what is wrong, and leaves nothing
// recorded or queued.
func TestSessionBadInput(t *testing.T) {
	t.Parallel()
	e := newSessionEnv(t, api.Config{MaxUploadBytes: 64 << 20})
	ctx := testenv.Context(t)
	data := randomFile(20<<20, 3)
	c := e.client(t, 0, e.key)
	start := func() apitypes.UploadSession {
		ss, err := c.StartSession(ctx, apitypes.NewUploadSession{Target: "t", Filename: "f.bin", Size: int64(len(data))}, "")
		if err != nil {
			t.Fatal(err)
		}
		return ss
	}
	ss := start()
	tests := []struct {
		name string
		do   func() error
		code int
		want string
	}{
		{"wrong part size", func() error { return c.PutPart(ctx, ss.ID, 1, data[:100], "") }, 400, "must be 16777216 bytes"},
		{"part 0", func() error { return c.PutPart(ctx, ss.ID, 0, data[:100], "") }, 400, "out of range"},
		{"part after the last", func() error { return c.PutPart(ctx, ss.ID, 3, data[:100], "") }, 400, "out of range"},
		{"bad chain", func() error { return c.PutPart(ctx, ss.ID, 2, data[16<<20:], "xyz") }, 400, "Chain"},
		{"complete with parts missing", func() error { _, _, err := c.CompleteSession(ctx, ss.ID, sum(data)); return err }, 409, "[1 2]"},
		{"over the size limit", func() error {
			_, err := c.StartSession(ctx, apitypes.NewUploadSession{Target: "t", Filename: "f", Size: 65 << 20}, "")
			return err
		}, 413, "limit"},
		{"bad sha256", func() error {
			_, err := c.StartSession(ctx, apitypes.NewUploadSession{Target: "t", Filename: "f", Size: 1, SHA256: "abc"}, "")
			return err
		}, 400, "sha256"},
		{"unknown target", func() error {
			_, err := c.StartSession(ctx, apitypes.NewUploadSession{Target: "nope", Filename: "f", Size: 1}, "")
			return err
		}, 422, "nope"},
	}
	for _, tc := range tests {
		err := tc.do()
		var ce *client.Error
		if !errors.As(err, &ce) || ce.StatusCode != tc.code || !strings.Contains(ce.Message, tc.want) {
			t.Errorf("%s: %v, want %d naming %q", tc.name, err, tc.code, tc.want)
		}
	}
	// A body cut short: nothing recorded for the part.
	cutPart(t, e.urls[0], e.key, ss.ID, 1, 16<<20, data[:1<<20])
	if got, _ := c.Session(ctx, ss.ID); len(got.Received) != 0 || got.BytesReceived != 0 {
		t.Errorf("after a part cut short: %+v", got)
	}
	// A declared SHA-256 the bytes do not match: 422, nothing recorded,
	// the object removed, no multipart upload left.
	e.sendParts(t, ss, data, []int{1, 2}, true)
	_, _, err := c.CompleteSession(ctx, ss.ID, strings.Repeat("0", 64))
	if statusOf(err) != http.StatusUnprocessableEntity {
		t.Fatalf("wrong sha256 at completion: %v, want 422", err)
	}
	var n int
	if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM jobs`).Scan(&n); err != nil || n != 0 {
		t.Errorf("%d jobs recorded (%v), want 0", n, err)
	}
	if got, _ := c.Session(ctx, ss.ID); got.State != "aborted" {
		t.Errorf("session %s after a mismatch, want aborted", got.State)
	}
	assertNoUpload(t, e.objects, ss)
	// Another tenant's session is not found.
	other, _, err := e.keys.CreateKey(ctx, apikeys.Spec{Name: "other", Tenant: "other", Role: apikeys.RoleUploader})
	if err != nil {
		t.Fatal(err)
	}
	ss2 := start()
	if _, err := e.client(t, 0, other).Session(ctx, ss2.ID); statusOf(err) != http.StatusNotFound {
		t.Errorf("another tenant's session: %v, want 404", err)
	}
	// Aborting removes the parts.
	e.sendParts(t, ss2, data, []int{1}, false)
	if err := c.AbortSession(ctx, ss2.ID); err != nil {
		t.Fatal(err)
	}
	assertNoUpload(t, e.objects, ss2)
}

// cutPart sends a part whose body ends before its Content-Length.
func cutPart(t *testing.T, base, key, id string, n int, size int64, body []byte) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "PUT /v1/uploads/sessions/%s/parts/%d HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n", id, n, key, size)
	_, _ = conn.Write(body)
	_ = conn.(*net.TCPConn).CloseWrite()
	_, _ = io.Copy(io.Discard, conn) // the server answers or closes
}

func assertNoUpload(t *testing.T, objects *storage.Store, ss apitypes.UploadSession) {
	t.Helper()
	ctx := testenv.Context(t)
	for _, key := range []string{"sessions/"} {
		for up := range objects.Client().ListIncompleteUploads(ctx, objects.Bucket(), key, true) {
			if up.Err == nil && up.UploadID != "" {
				t.Errorf("multipart upload %s of %s left behind", up.UploadID, up.Key)
			}
		}
	}
	for o := range objects.Client().ListObjects(ctx, objects.Bucket(), minio.ListObjectsOptions{Prefix: "sessions/", Recursive: true}) {
		if o.Err == nil {
			t.Errorf("object %s left behind", o.Key)
		}
	}
}

// An expired session answers 410 and the sweeper's query closes it.
func TestSessionExpires(t *testing.T) {
	t.Parallel()
	e := newSessionEnv(t, api.Config{SessionTTL: 300 * time.Millisecond})
	ctx := testenv.Context(t)
	c := e.client(t, 0, e.key)
	data := randomFile(1000, 4)
	ss, err := c.StartSession(ctx, apitypes.NewUploadSession{Target: "t", Filename: "f", Size: int64(len(data))}, "")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := c.Session(ctx, ss.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.State == "expired" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("session still %s", got.State)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := c.PutPart(ctx, ss.ID, 1, data, ""); statusOf(err) != http.StatusGone {
		t.Fatalf("a part after expiry: %v, want 410", err)
	}
	expired, err := e.store.ExpiredSessions(ctx, 10)
	if err != nil || len(expired) != 1 || expired[0].ID != ss.ID {
		t.Fatalf("expired sessions %v, %v", expired, err)
	}
	if err := e.objects.AbortMultipart(ctx, expired[0].Job.ObjectKey, expired[0].UploadID); err != nil {
		t.Fatal(err)
	}
	assertNoUpload(t, e.objects, ss)
}

// An API process that dies in the middle of a part records nothing of it;
// the client sends the part to another process and the session carries on.
func TestSessionPartCutByADyingAPI(t *testing.T) {
	t.Parallel()
	e := newSessionEnv(t, api.Config{})
	ctx := testenv.Context(t)
	data := randomFile(20<<20, 5)
	c := e.client(t, 0, e.key)
	ss, err := c.StartSession(ctx, apitypes.NewUploadSession{Target: "t", Filename: "f.bin", Size: int64(len(data)), SHA256: sum(data)}, "")
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	sent := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPut, fmt.Sprintf("%s/v1/uploads/sessions/%s/parts/1", e.urls[0], ss.ID), pr)
		req.ContentLength = ss.PartSize
		req.Header.Set("Authorization", "Bearer "+e.key)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			err = fmt.Errorf("answered %s", resp.Status)
		}
		sent <- err
	}()
	if _, err := pw.Write(data[:4<<20]); err != nil {
		t.Fatal(err)
	}
	e.servers[0].CloseClientConnections() // the process dies mid-part
	_ = pw.CloseWithError(errors.New("connection lost"))
	if err := <-sent; err == nil {
		t.Fatal("the cut part was answered")
	}
	e.sendParts(t, ss, data, []int{2, 1}, true) // the same parts, through the other process (and the first again)
	job, created, err := e.client(t, 1, e.key).CompleteSession(ctx, ss.ID, "")
	if err != nil || !created {
		t.Fatalf("complete: %v %v", created, err)
	}
	assertObject(t, e.objects, "sessions/"+job.ID, data)
	got, _ := c.Session(ctx, ss.ID)
	if got.BytesReceived != int64(len(data)) {
		t.Errorf("bytes received %d, want %d: the cut part counted nothing", got.BytesReceived, len(data))
	}
}

// A session may name a document: completing it records a version; the
// same content again answers that version (200) and removes the session's
// copy; new content is the next version.
func TestSessionNamesADocument(t *testing.T) {
	t.Parallel()
	e := newSessionEnv(t, api.Config{})
	ctx := testenv.Context(t)
	c := e.client(t, 0, e.key)
	send := func(data []byte) (apitypes.Job, bool, apitypes.UploadSession) {
		t.Helper()
		ss, err := c.StartSession(ctx, apitypes.NewUploadSession{Target: "t", Filename: "scan.tif", Size: int64(len(data)),
			Document: "scans/scan.tif"}, "")
		if err != nil {
			t.Fatal(err)
		}
		e.sendParts(t, ss, data, []int{1, 2}, true)
		job, created, err := c.CompleteSession(ctx, ss.ID, sum(data))
		if err != nil {
			t.Fatal(err)
		}
		return job, created, ss
	}
	v1data, v2data := randomFile(20<<20, 6), randomFile(20<<20, 7)
	v1, created, _ := send(v1data)
	if !created || v1.Version != 1 || v1.DocumentKey != "scans/scan.tif" {
		t.Fatalf("first session: %+v created=%v, want version 1 of scans/scan.tif", v1, created)
	}
	same, created, ss := send(v1data)
	if created || same.ID != v1.ID {
		t.Fatalf("same content: job %s created=%v, want version 1's job %s, not created", same.ID, created, v1.ID)
	}
	var copyKey string
	if err := e.pool.QueryRow(ctx, `SELECT object_key FROM upload_sessions WHERE id = $1`, ss.ID).Scan(&copyKey); err != nil {
		t.Fatal(err)
	}
	if _, err := e.objects.Size(ctx, copyKey); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("the unchanged session's copy %s is still stored (%v)", copyKey, err)
	}
	v2, created, _ := send(v2data)
	if !created || v2.Version != 2 || v2.Document != v1.Document {
		t.Fatalf("new content: %+v created=%v, want version 2 of %s", v2, created, v1.Document)
	}
	var n int
	if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM jobs`).Scan(&n); err != nil || n != 2 {
		t.Errorf("%d jobs (%v), want 2 versions", n, err)
	}
}
