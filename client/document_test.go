package client_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-relay/ferry/apitypes"
	"github.com/ferry-relay/ferry/client"
)

// docsAPI is a small fake of ferry's documents routes (issue 21), as
// docs-core defines them, answering with the wire types: GET
// /v1/documents (keyset pages by key), GET and DELETE /v1/documents/{id},
// DELETE /v1/documents?target=&key=, and raw POST /v1/uploads with
// document and sha256. The real routes are tested end to end in e2e.
type docsAPI struct {
	mu    sync.Mutex
	docs  []*apitypes.Document // by key
	jobs  int
	query []string // the query of each request, in order
}

func (a *docsAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer k" {
		writeErr(w, http.StatusUnauthorized, "unauthorized", "no key")
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.query = append(a.query, r.Method+" "+r.URL.Path+"?"+r.URL.RawQuery)
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/v1/documents":
		a.list(w, r)
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v1/documents/"):
		if d := a.byID(strings.TrimPrefix(r.URL.Path, "/v1/documents/")); d != nil {
			writeJSON(w, http.StatusOK, d)
			return
		}
		writeErr(w, http.StatusNotFound, "not_found", "no such document")
	case r.Method == http.MethodDelete:
		a.delete(w, r)
	case r.Method == http.MethodPost && r.URL.Path == "/v1/uploads":
		a.upload(w, r)
	default:
		writeErr(w, http.StatusNotFound, "not_found", "no route")
	}
}

func (a *docsAPI) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, _ := strconv.Atoi(q.Get("limit"))
	limit = max(1, min(cmpOr(limit, 100), 1000))
	var out apitypes.DocumentList
	for _, d := range a.docs {
		if (q.Get("target") != "" && d.Target != q.Get("target")) || !strings.HasPrefix(d.Key, q.Get("key_prefix")) ||
			(q.Get("state") != "" && d.State != q.Get("state")) || d.Key <= q.Get("cursor") {
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
	writeJSON(w, http.StatusOK, out)
}

func (a *docsAPI) byID(id string) *apitypes.Document {
	for _, d := range a.docs {
		if d.ID == id {
			return d
		}
	}
	return nil
}

func (a *docsAPI) byKey(target, key string) *apitypes.Document {
	for _, d := range a.docs {
		if d.Target == target && d.Key == key {
			return d
		}
	}
	return nil
}

func (a *docsAPI) delete(w http.ResponseWriter, r *http.Request) {
	var d *apitypes.Document
	if id, ok := strings.CutPrefix(r.URL.Path, "/v1/documents/"); ok {
		d = a.byID(id)
	} else {
		d = a.byKey(r.URL.Query().Get("target"), r.URL.Query().Get("key"))
	}
	if d == nil {
		writeErr(w, http.StatusNotFound, "not_found", "no such document")
		return
	}
	if d.Target == "4d" {
		writeErr(w, http.StatusUnprocessableEntity, "delete_unsupported", "target 4d (kind 4d) has no delete")
		return
	}
	writeJSON(w, http.StatusAccepted, a.version(d, "delete", "", 0))
}

// version records a new version of d and returns its job; older versions
// not started become SUPERSEDED.
func (a *docsAPI) version(d *apitypes.Document, op, sum string, size int64) apitypes.Job {
	a.jobs++
	for i := range d.History {
		if d.History[i].Status == apitypes.StatusQueued {
			d.History[i].Status = apitypes.StatusSuperseded
		}
	}
	d.Versions++
	id := "job-" + strconv.Itoa(a.jobs)
	d.History = append(d.History, apitypes.DocumentVersion{Version: d.Versions, Job: id, Op: op,
		Status: apitypes.StatusQueued, SHA256: sum, Size: size, AcceptedAt: time.Now()})
	return apitypes.Job{ID: id, Target: d.Target, Status: apitypes.StatusQueued, SHA256: sum, Size: size,
		Document: d.ID, DocumentKey: d.Key, Version: d.Versions}
}

func (a *docsAPI) upload(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	h := sha256.New()
	n, _ := io.Copy(h, r.Body)
	sum := hex.EncodeToString(h.Sum(nil))
	if declared := q.Get("sha256"); declared != "" && declared != sum {
		writeErr(w, http.StatusBadRequest, "bad_request", "sha256: the bytes do not match")
		return
	}
	key := q.Get("document")
	if key == "" {
		a.jobs++
		writeJSON(w, http.StatusAccepted, apitypes.UploadResult{Jobs: []apitypes.Job{{ID: "job-" + strconv.Itoa(a.jobs), SHA256: sum, Size: n}}})
		return
	}
	d := a.byKey(q.Get("target"), key)
	if d == nil {
		d = &apitypes.Document{ID: "doc-" + strconv.Itoa(len(a.docs)+1), Target: q.Get("target"), Key: key, State: apitypes.DocumentActive}
		a.docs = append(a.docs, d)
		slices.SortFunc(a.docs, func(x, y *apitypes.Document) int { return strings.Compare(x.Key, y.Key) })
	}
	if l := len(d.History); l > 0 && d.History[l-1].SHA256 == sum {
		v := d.History[l-1]
		writeJSON(w, http.StatusOK, apitypes.UploadResult{Jobs: []apitypes.Job{{ID: v.Job, SHA256: sum, Document: d.ID, Version: v.Version}}})
		return
	}
	writeJSON(w, http.StatusAccepted, apitypes.UploadResult{Jobs: []apitypes.Job{a.version(d, "put", sum, n)}})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, code int, c, msg string) {
	var e apitypes.Error
	e.Error.Code, e.Error.Message = c, msg
	writeJSON(w, code, e)
}

func cmpOr(a, b int) int {
	if a != 0 {
		return a
	}
	return b
}

func newDocsClient(t *testing.T) (*client.Client, *docsAPI) {
	t.Helper()
	api := &docsAPI{}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	c, err := client.New(srv.URL, "k", nil)
	if err != nil {
		t.Fatal(err)
	}
	return c, api
}

func upload(t *testing.T, c *client.Client, target, key, content string, declare bool) (apitypes.Job, bool) {
	t.Helper()
	u := client.Upload{Target: target, Filename: "f.txt", Document: key, Body: strings.NewReader(content), Size: int64(len(content))}
	if declare {
		s := sha256.Sum256([]byte(content))
		u.SHA256 = hex.EncodeToString(s[:])
	}
	job, created, err := c.Upload(context.Background(), u)
	if err != nil {
		t.Fatalf("upload %s/%s: %v", target, key, err)
	}
	return job, created
}

// TestUploadNamesTheDocument: Upload sends document and sha256 in the
// query, a repeat of the latest content is not created, a new content is
// the next version, and a declared SHA-256 the bytes do not match is the
// server's 400.
func TestUploadNamesTheDocument(t *testing.T) {
	c, api := newDocsClient(t)
	j1, created := upload(t, c, "archive", "reports/été 2026.pdf", "v1", true)
	if !created || j1.Version != 1 || j1.DocumentKey != "reports/été 2026.pdf" {
		t.Fatalf("first upload: %+v created=%v", j1, created)
	}
	if q := api.query[0]; !strings.Contains(q, "document=reports%2F%C3%A9t%C3%A9+2026.pdf") || !strings.Contains(q, "sha256="+j1.SHA256) {
		t.Errorf("the upload's query lacks document or sha256: %s", q)
	}
	if again, created := upload(t, c, "archive", "reports/été 2026.pdf", "v1", true); created || again.ID != j1.ID {
		t.Errorf("same content again: %+v created=%v, want job %s, not created", again, created, j1.ID)
	}
	if j2, created := upload(t, c, "archive", "reports/été 2026.pdf", "v2", false); !created || j2.Version != 2 || j2.Document != j1.Document {
		t.Errorf("new content: %+v created=%v, want version 2 of %s", j2, created, j1.Document)
	}
	if q := api.query[len(api.query)-1]; strings.Contains(q, "sha256=") {
		t.Errorf("an upload without SHA256 sent one: %s", q)
	}
	_, _, err := c.Upload(context.Background(), client.Upload{Target: "archive", Filename: "f", Document: "x",
		SHA256: strings.Repeat("0", 64), Body: strings.NewReader("abc"), Size: 3})
	var ce *client.Error
	if !errors.As(err, &ce) || ce.StatusCode != http.StatusBadRequest {
		t.Errorf("a wrong sha256: %v, want the 400", err)
	}
}

// TestDocumentsPagesAndShows: Documents sends the filter and pages by
// the cursor, EachDocument walks every page, Document returns the
// history, DeleteDocument and DeleteDocumentByID record deletes, and the
// API's refusals come back as *client.Error.
func TestDocumentsPagesAndShows(t *testing.T) {
	c, api := newDocsClient(t)
	ctx := context.Background()
	for _, k := range []string{"a/1", "a/2", "a/3", "b/1"} {
		upload(t, c, "archive", k, "content of "+k, true)
	}
	upload(t, c, "4d", "a/4", "x", true)
	page, err := c.Documents(ctx, client.DocumentFilter{Target: "archive", KeyPrefix: "a/", State: "active", Batch: "b1", Limit: 2})
	if err != nil || len(page.Documents) != 2 || page.NextCursor != "a/2" {
		t.Fatalf("first page: %+v %v", page, err)
	}
	q := api.query[len(api.query)-1]
	for _, want := range []string{"GET /v1/documents?", "target=archive", "key_prefix=a%2F", "state=active", "batch=b1", "limit=2"} {
		if !strings.Contains(q, want) {
			t.Errorf("list query %q lacks %q", q, want)
		}
	}
	page, err = c.Documents(ctx, client.DocumentFilter{Target: "archive", KeyPrefix: "a/", Limit: 2, Cursor: page.NextCursor})
	if err != nil || len(page.Documents) != 1 || page.Documents[0].Key != "a/3" || page.NextCursor != "" {
		t.Fatalf("second page: %+v %v", page, err)
	}
	var keys []string
	err = c.EachDocument(ctx, client.DocumentFilter{Limit: 2}, func(d apitypes.Document) error {
		keys = append(keys, d.Target+":"+d.Key)
		return nil
	})
	if want := []string{"archive:a/1", "archive:a/2", "archive:a/3", "4d:a/4", "archive:b/1"}; err != nil || !slices.Equal(keys, want) {
		t.Errorf("EachDocument: %v %v, want %v", keys, err, want)
	}

	upload(t, c, "archive", "a/1", "second content", true)
	del, err := c.DeleteDocument(ctx, "archive", "a/1")
	if err != nil || del.Version != 3 {
		t.Fatalf("delete by key: %+v %v", del, err)
	}
	if q := api.query[len(api.query)-1]; q != "DELETE /v1/documents?key=a%2F1&target=archive" {
		t.Errorf("delete by key sent %s", q)
	}
	d, err := c.Document(ctx, del.Document)
	if err != nil || len(d.History) != 3 {
		t.Fatalf("document: %+v %v", d, err)
	}
	if got := []apitypes.Status{d.History[0].Status, d.History[1].Status, d.History[2].Status}; !slices.Equal(got,
		[]apitypes.Status{apitypes.StatusSuperseded, apitypes.StatusSuperseded, apitypes.StatusQueued}) || d.History[2].Op != "delete" {
		t.Errorf("history: %+v", d.History)
	}
	if _, err := c.DeleteDocumentByID(ctx, d.ID); err != nil {
		t.Errorf("delete by id: %v", err)
	}
	if q := api.query[len(api.query)-1]; q != "DELETE /v1/documents/"+d.ID+"?" {
		t.Errorf("delete by id sent %s", q)
	}
	var ce *client.Error
	if _, err := c.DeleteDocument(ctx, "4d", "a/4"); !errors.As(err, &ce) || ce.Code != "delete_unsupported" || ce.StatusCode != 422 {
		t.Errorf("delete at 4d: %v, want 422 delete_unsupported", err)
	}
	if _, err := c.Document(ctx, "nope"); !client.IsNotFound(err) {
		t.Errorf("unknown document: %v", err)
	}
}
