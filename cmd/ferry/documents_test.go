package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-relay/ferry/apitypes"
)

// docsServer is a small fake of the API routes `ferry push --documents`
// and `ferry documents` call, answering with the wire types of issue 21
// (the real routes come from docs-core and are tested end to end in e2e):
// targets and their check, batch objects and their keys, raw uploads with
// document and sha256 (the same content as a document's latest version
// creates nothing: 200 with its job), and the documents routes.
type docsServer struct {
	mu      sync.Mutex
	docs    []*apitypes.Document // by key
	jobs    int
	batches map[string]map[string]apitypes.Job // idempotency key → job
	uploads []url.Values
	// refuse, when it returns true for an upload's query, answers it 400
	// as a declared sha256 the bytes do not match.
	refuse func(url.Values) bool
}

func newDocsServer(t *testing.T) (*docsServer, string) {
	s := &docsServer{batches: map[string]map[string]apitypes.Job{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/targets", func(w http.ResponseWriter, _ *http.Request) {
		writeJSONTest(w, http.StatusOK, apitypes.TargetList{Targets: []apitypes.Target{{Name: "archive", Kind: "http", State: "ok"}}})
	})
	mux.HandleFunc("POST /v1/targets/{name}/check", func(w http.ResponseWriter, r *http.Request) {
		var in apitypes.CheckRequest
		_ = json.NewDecoder(r.Body).Decode(&in)
		writeJSONTest(w, http.StatusOK, apitypes.CheckResult{OK: true, Target: r.PathValue("name"), Params: in.Params})
	})
	mux.HandleFunc("GET /v1/batches/{name}", s.batch)
	mux.HandleFunc("GET /v1/batches", func(w http.ResponseWriter, _ *http.Request) {
		writeJSONTest(w, http.StatusOK, apitypes.BatchPage{Batches: []apitypes.BatchSummary{{Name: "d1", Target: "archive",
			Total: apitypes.Count{Files: 4}, ByStatus: map[apitypes.Status]apitypes.Count{apitypes.StatusSuccess: {Files: 3}, apitypes.StatusSuperseded: {Files: 1}}}}})
	})
	mux.HandleFunc("POST /v1/batches", s.createBatch)
	mux.HandleFunc("GET /v1/batches/{name}/keys", s.keys)
	mux.HandleFunc("POST /v1/uploads", s.upload)
	mux.HandleFunc("GET /v1/documents", s.list)
	mux.HandleFunc("GET /v1/documents/{id}", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if d := s.find(func(d *apitypes.Document) bool { return d.ID == r.PathValue("id") }); d != nil {
			writeJSONTest(w, http.StatusOK, d)
			return
		}
		writeErrTest(w, http.StatusNotFound, "not_found", "document not found")
	})
	mux.HandleFunc("DELETE /v1/documents", s.delete)
	mux.HandleFunc("DELETE /v1/documents/{id}", s.delete)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer k" {
			writeErrTest(w, http.StatusUnauthorized, "unauthorized", "bad key")
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return s, srv.URL
}

func (s *docsServer) batch(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys, ok := s.batches[r.PathValue("name")]
	if !ok {
		writeErrTest(w, http.StatusNotFound, "not_found", "batch not found")
		return
	}
	sum := apitypes.BatchSummary{Name: r.PathValue("name"), Target: "archive", ByStatus: map[apitypes.Status]apitypes.Count{}}
	for _, j := range keys {
		st := s.statusOf(j.ID)
		sum.Total.Files++
		sum.ByStatus[st] = apitypes.Count{Files: sum.ByStatus[st].Files + 1}
		if !st.Final() {
			sum.Pending.Files++
		}
	}
	writeJSONTest(w, http.StatusOK, sum)
}

// statusOf is the status of job id now, as its document's history has it.
func (s *docsServer) statusOf(id string) apitypes.Status {
	for _, d := range s.docs {
		for _, v := range d.History {
			if v.Job == id {
				return v.Status
			}
		}
	}
	return apitypes.StatusQueued
}

func (s *docsServer) createBatch(w http.ResponseWriter, r *http.Request) {
	var b apitypes.Batch
	_ = json.NewDecoder(r.Body).Decode(&b)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.batches[b.Name]; ok {
		writeJSONTest(w, http.StatusOK, b)
		return
	}
	s.batches[b.Name] = map[string]apitypes.Job{}
	writeJSONTest(w, http.StatusCreated, b)
}

func (s *docsServer) keys(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.batches[r.PathValue("name")] {
		_, _ = io.WriteString(w, k+"\n")
	}
}

func (s *docsServer) find(match func(*apitypes.Document) bool) *apitypes.Document {
	for _, d := range s.docs {
		if match(d) {
			return d
		}
	}
	return nil
}

// version records a new version of d; older versions not started become
// SUPERSEDED.
func (s *docsServer) version(d *apitypes.Document, op, sum string, size int64) apitypes.Job {
	s.jobs++
	for i := range d.History {
		if d.History[i].Status == apitypes.StatusQueued {
			d.History[i].Status = apitypes.StatusSuperseded
		}
	}
	d.Versions++
	d.UpdatedAt = time.Now()
	id := "job-" + strconv.Itoa(s.jobs)
	d.History = append(d.History, apitypes.DocumentVersion{Version: d.Versions, Job: id, Op: op,
		Status: apitypes.StatusQueued, SHA256: sum, Size: size, AcceptedAt: time.Now()})
	return apitypes.Job{ID: id, Target: d.Target, Status: apitypes.StatusQueued, SHA256: sum, Size: size,
		Document: d.ID, DocumentKey: d.Key, Version: d.Versions}
}

func (s *docsServer) upload(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	h := sha256.New()
	n, _ := io.Copy(h, r.Body)
	sum := hex.EncodeToString(h.Sum(nil))
	s.mu.Lock()
	defer s.mu.Unlock()
	s.uploads = append(s.uploads, q)
	if q.Get("sha256") != sum || (s.refuse != nil && s.refuse(q)) {
		writeErrTest(w, http.StatusBadRequest, "bad_request", "sha256: the bytes do not match the declared SHA-256")
		return
	}
	batch := s.batches[q.Get("batch")]
	if j, ok := batch[r.Header.Get("Idempotency-Key")]; ok {
		writeJSONTest(w, http.StatusOK, apitypes.UploadResult{Jobs: []apitypes.Job{j}})
		return
	}
	key, target := q.Get("document"), q.Get("target")
	d := s.find(func(d *apitypes.Document) bool { return d.Target == target && d.Key == key })
	if d == nil {
		d = &apitypes.Document{ID: "doc-" + strconv.Itoa(len(s.docs)+1), Target: target, Key: key, State: apitypes.DocumentActive,
			Remote: map[string]string{}, CreatedAt: time.Now()}
		s.docs = append(s.docs, d)
		slices.SortFunc(s.docs, func(x, y *apitypes.Document) int { return strings.Compare(x.Key, y.Key) })
	}
	code := http.StatusAccepted
	var job apitypes.Job
	if l := len(d.History); l > 0 && d.History[l-1].SHA256 == sum {
		v := d.History[l-1]
		code, job = http.StatusOK, apitypes.Job{ID: v.Job, Target: target, SHA256: sum, Status: v.Status, Document: d.ID, DocumentKey: key, Version: v.Version}
	} else {
		job = s.version(d, "put", sum, n)
	}
	batch[r.Header.Get("Idempotency-Key")] = job
	writeJSONTest(w, code, apitypes.UploadResult{Jobs: []apitypes.Job{job}})
}

func (s *docsServer) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, _ := strconv.Atoi(q.Get("limit"))
	s.mu.Lock()
	defer s.mu.Unlock()
	var out apitypes.DocumentList
	for _, d := range s.docs {
		if (q.Get("target") != "" && d.Target != q.Get("target")) || !strings.HasPrefix(d.Key, q.Get("key_prefix")) || d.Key <= q.Get("cursor") {
			continue
		}
		if len(out.Documents) == limit {
			out.NextCursor = out.Documents[limit-1].Key
			break
		}
		c := *d
		c.History = nil
		out.Documents = append(out.Documents, c)
	}
	writeJSONTest(w, http.StatusOK, out)
}

func (s *docsServer) delete(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := r.URL.Query()
	d := s.find(func(d *apitypes.Document) bool {
		return d.ID == r.PathValue("id") || (d.Target == q.Get("target") && d.Key == q.Get("key"))
	})
	if d == nil {
		writeErrTest(w, http.StatusNotFound, "not_found", "document not found")
		return
	}
	writeJSONTest(w, http.StatusAccepted, s.version(d, "delete", "", 0))
}

func writeJSONTest(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeErrTest(w http.ResponseWriter, code int, c, msg string) {
	var e apitypes.Error
	e.Error.Code, e.Error.Message = c, msg
	writeJSONTest(w, code, e)
}

// ferryCLI runs the ferry command line in process against server.
func ferryCLI(t *testing.T, server string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := rootCommand()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(append(args, "--server", server, "--key", "k"))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err = cmd.ExecuteContext(ctx)
	return out.String(), errOut.String(), err
}

func sumOf(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestPushDocuments: `ferry push --documents` keys each file by its path
// relative to the folder and declares every file's SHA-256; a changed
// file pushed again is version 2 of the same document; an unchanged push
// into another batch creates nothing; without --documents no key is sent.
func TestPushDocuments(t *testing.T) {
	srv, base := newDocsServer(t)
	dir := t.TempDir()
	files := map[string]string{"a.txt": "one", "sub/b.txt": "two", "sub/été.txt": "three"}
	writeFiles(t, dir, files)
	push := func(batch string, extra ...string) string {
		t.Helper()
		out, errOut, err := ferryCLI(t, base, append([]string{"push", dir, "--target", "archive", "--batch", batch, "--progress", "none"}, extra...)...)
		if err != nil {
			t.Fatalf("push %s: %v\n%s%s", batch, err, out, errOut)
		}
		return out
	}
	push("docs-1", "--documents")
	got := map[string]string{}
	for _, q := range srv.uploads {
		got[q.Get("document")] = q.Get("sha256")
	}
	for name, content := range files {
		if got[name] != sumOf(content) {
			t.Errorf("upload of %s: document key and sha256 %v, want key %q with %s", name, got, name, sumOf(content))
		}
	}

	writeFiles(t, dir, map[string]string{"sub/b.txt": "two, changed"})
	out := push("docs-1", "--documents")
	if !strings.Contains(out, "3 accepted (1 uploaded") {
		t.Errorf("second push: %s", out)
	}
	out = push("docs-2", "--documents")
	if !strings.Contains(out, "0 uploaded") || !strings.Contains(out, "3 already accepted") {
		t.Errorf("an unchanged push into another batch: %s", out)
	}
	versions := map[string]int{}
	for _, d := range srv.docs {
		versions[d.Key] = d.Versions
	}
	if want := map[string]int{"a.txt": 1, "sub/b.txt": 2, "sub/été.txt": 1}; !mapsEqual(versions, want) {
		t.Errorf("document versions %v, want %v", versions, want)
	}

	n := len(srv.uploads)
	push("plain")
	for _, q := range srv.uploads[n:] {
		if q.Has("document") || q.Get("sha256") == "" {
			t.Errorf("a push without --documents sent %v: want sha256 and no document", q)
		}
	}
}

// TestPushDocumentChangedWhileSent: a file that changes after it was
// hashed is refused (its bytes no longer match the declared SHA-256);
// push hashes it again and sends it as it is now.
func TestPushDocumentChangedWhileSent(t *testing.T) {
	srv, base := newDocsServer(t)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"a.txt": "before"})
	refused := false
	srv.refuse = func(q url.Values) bool {
		if refused {
			return false
		}
		refused = true
		writeFiles(t, dir, map[string]string{"a.txt": "after the hash"})
		return true
	}
	out, errOut, err := ferryCLI(t, base, "push", dir, "--target", "archive", "--batch", "b", "--documents", "--progress", "none")
	if err != nil {
		t.Fatalf("push: %v\n%s%s", err, out, errOut)
	}
	if len(srv.uploads) != 2 || srv.uploads[1].Get("sha256") != sumOf("after the hash") {
		t.Errorf("uploads %v: want a second one declaring the new content", srv.uploads)
	}
	if len(srv.docs) != 1 || srv.docs[0].History[0].SHA256 != sumOf("after the hash") {
		t.Errorf("documents: %+v", srv.docs)
	}
}

// TestDocumentsCommands: list pages by --limit/--cursor and says when more
// exist, --all lists every one; show prints the version timeline; delete
// by --target/--doc-key and by id records a delete job; bad usage and unknown
// documents are errors (exit status 1).
func TestDocumentsCommands(t *testing.T) {
	srv, base := newDocsServer(t)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"a.txt": "one", "b.txt": "two", "c.txt": "three"})
	if _, _, err := ferryCLI(t, base, "push", dir, "--target", "archive", "--batch", "d1", "--documents", "--progress", "none"); err != nil {
		t.Fatal(err)
	}
	writeFiles(t, dir, map[string]string{"b.txt": "two, v2"})
	if _, _, err := ferryCLI(t, base, "push", dir, "--target", "archive", "--batch", "d1", "--documents", "--progress", "none"); err != nil {
		t.Fatal(err)
	}

	// The batch's status lists SUPERSEDED with the other statuses.
	out, _, err := ferryCLI(t, base, "status", "d1")
	if line := grepLines(out, "SUPERSEDED"); err != nil || !strings.HasPrefix(line, "SUPERSEDED") || !strings.Contains(line, "1") {
		t.Errorf("status d1: %v\n%s", err, out)
	}
	out, _, err = ferryCLI(t, base, "status")
	if err != nil || !strings.Contains(out, "SUPERSEDED") || !strings.Contains(grepLines(out, "d1"), " 1 ") {
		t.Errorf("status: %v\n%s", err, out)
	}

	out, errOut, err := ferryCLI(t, base, "documents", "list", "--target", "archive", "--limit", "2")
	if err != nil || rows(out) != 3 || !strings.Contains(errOut, "--cursor b.txt") {
		t.Errorf("list --limit 2: %v\n%s%s", err, out, errOut)
	}
	if !strings.Contains(out, "KEY") || !strings.Contains(grepLines(out, "b.txt"), "  2  ") {
		t.Errorf("list lacks its header or b.txt's 2 versions:\n%s", out)
	}
	out, errOut, err = ferryCLI(t, base, "documents", "list", "--target", "archive", "--limit", "2", "--cursor", "b.txt")
	if err != nil || rows(out) != 2 || !strings.Contains(out, "c.txt") || errOut != "" {
		t.Errorf("list --cursor: %v\n%s%s", err, out, errOut)
	}
	out, errOut, err = ferryCLI(t, base, "documents", "list", "--all", "--limit", "1")
	if err != nil || rows(out) != 4 || errOut != "" {
		t.Errorf("list --all: %v\n%s%s", err, out, errOut)
	}

	out, _, err = ferryCLI(t, base, "documents", "show", "--target", "archive", "--doc-key", "b.txt")
	if err != nil {
		t.Fatalf("show: %v", err)
	}
	for _, want := range []string{"key       b.txt", "2 versions:", "VERSION  OP", sumOf("two")[:12], "SUPERSEDED", sumOf("two, v2")[:12], "QUEUED"} {
		if !strings.Contains(out, want) {
			t.Errorf("show lacks %q:\n%s", want, out)
		}
	}

	out, _, err = ferryCLI(t, base, "documents", "delete", "--target", "archive", "--doc-key", "c.txt")
	if err != nil || !strings.Contains(out, `delete of document "c.txt" at archive recorded`) || !strings.Contains(out, "version 2") {
		t.Errorf("delete by key: %v %s", err, out)
	}
	if _, _, err = ferryCLI(t, base, "documents", "delete", srv.docs[0].ID); err != nil || srv.docs[0].History[1].Op != "delete" {
		t.Errorf("delete by id: %v %+v", err, srv.docs[0].History)
	}
	out, _, _ = ferryCLI(t, base, "documents", "show", srv.docs[2].ID)
	if line := grepLines(out, "delete"); !strings.HasPrefix(line, "2") || !strings.Contains(line, "QUEUED") {
		t.Errorf("show after delete: %q\n%s", line, out)
	}

	for _, bad := range [][]string{
		{"documents", "show", "doc-1", "--doc-key", "a.txt"},
		{"documents", "show"},
		{"documents", "show", "--target", "archive", "--doc-key", "nope.txt"},
		{"documents", "show", "doc-99"},
		{"documents", "delete", "--target", "archive", "--doc-key", "nope.txt"},
		{"documents", "list", "--state", "gone"},
	} {
		if _, _, err := ferryCLI(t, base, bad...); err == nil {
			t.Errorf("ferry %v: no error", bad)
		}
	}
}

// rows counts the lines of a listing, its header included.
func rows(s string) int { return len(strings.Split(strings.TrimSpace(s), "\n")) }

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
