package sink

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Document paths (issue 21, the http kind's versions: put). A path under
// DocumentsPath is a document of its own, as a WebDAV or S3-like store
// keeps one: PUT creates or replaces it, GET and HEAD read it, DELETE
// removes it. Every PUT stores a new version and gives it a new strong
// ETag, and the sink evaluates the preconditions RFC 9110 §13.1 defines
// (§13.2.2 order): If-Match (the current ETag, or *) and If-None-Match
// (* or a list) answer 412 when false; If-Match on a document that does
// not exist is false. HEAD and GET answer the ETag and, unless
// Options.NoReprDigest, the RFC 9530 Repr-Digest (sha-256) of the
// current version; GET also its bytes, which the sink keeps in memory for
// document paths. A PUT with an Idempotency-Key already answered gets the
// same answer again, nothing stored (unless IgnoreIdempotencyKey).
// Faults: Fail hits document requests as any other; LoseAnswer("put") and
// LoseAnswer("delete") carry out the next PUT or DELETE and drop its
// answer; RefuseLookup makes the next HEAD or GET answer 503.

// DocumentsPath is the prefix of document paths.
const DocumentsPath = "/docs/"

// Steps of a document path, as LoseAnswer takes them.
const (
	StepPut    = "put"
	StepDelete = "delete"
)

// resource is a document at a document path.
type resource struct {
	etag     string
	data     []byte
	versions []Document
	deleted  bool
}

// docAnswer is the answer to a document PUT, kept for its
// Idempotency-Key.
type docAnswer struct {
	status int
	etag   string
	doc    Document
}

// Resources maps each document path that holds a document (not deleted)
// to its versions, oldest first. Paths are as sent, escaped.
func (s *Server) Resources() map[string][]Document {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string][]Document{}
	for p, r := range s.resources {
		if !r.deleted {
			out[p] = append([]Document(nil), r.versions...)
		}
	}
	return out
}

// SetDocument stores data at a document path as a new version, as a
// change made behind ferry's back; it returns the new ETag.
func (s *Server) SetDocument(path string, data []byte) string {
	sum := sha256.Sum256(data)
	doc := Document{Path: path, Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:]), Received: time.Now()}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.storeLocked(path, doc, data)
}

// serveDocument answers a request to a document path.
func (s *Server) serveDocument(w http.ResponseWriter, r *http.Request) (int, int64) {
	s.mu.Lock()
	refusing := time.Now().Before(s.refuseUntil)
	s.mu.Unlock()
	if s.opts.Token != "" && (refusing || r.Header.Get("Authorization") != "Bearer "+s.opts.Token) {
		_, _ = io.Copy(io.Discard, r.Body)
		return reply(w, http.StatusUnauthorized, "missing or invalid bearer token"), 0
	}
	switch r.Method {
	case http.MethodPut:
		return s.putDocument(w, r)
	case http.MethodGet, http.MethodHead:
		return s.readDocument(w, r), 0
	case http.MethodDelete:
		return s.deleteDocument(w, r), 0
	}
	w.Header().Set("Allow", "PUT, GET, HEAD, DELETE")
	return reply(w, http.StatusMethodNotAllowed, "a document path takes PUT, GET, HEAD or DELETE"), 0
}

// current returns the path's ETag, "" when no document is there.
func (s *Server) current(path string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.resources[path]; r != nil && !r.deleted {
		return r.etag
	}
	return ""
}

// preconditionFails evaluates If-Match, then If-None-Match, against the
// current ETag ("" for none), as RFC 9110 §13.2.2 orders them.
func preconditionFails(r *http.Request, etag string) bool {
	if im := r.Header.Get("If-Match"); im != "" {
		return etag == "" || (strings.TrimSpace(im) != "*" && !listHas(im, etag))
	}
	if inm := r.Header.Get("If-None-Match"); inm != "" {
		return etag != "" && (strings.TrimSpace(inm) == "*" || listHas(inm, etag))
	}
	return false
}

func listHas(list, etag string) bool {
	for _, v := range strings.Split(list, ",") {
		if strings.TrimSpace(v) == etag {
			return true
		}
	}
	return false
}

func (s *Server) putDocument(w http.ResponseWriter, r *http.Request) (int, int64) {
	path := r.URL.EscapedPath()
	key := r.Header.Get("Idempotency-Key")
	if key != "" && !s.opts.IgnoreIdempotencyKey {
		s.mu.Lock()
		a, seen := s.docAnswers[key]
		s.mu.Unlock()
		if seen {
			_, _ = io.Copy(io.Discard, r.Body)
			return docReply(w, a), a.doc.Size
		}
	}
	f, faulted := s.nextFault(StepPut)
	if faulted && !f.after {
		return s.injected(w, f), 0
	}
	if preconditionFails(r, s.current(path)) {
		_, _ = io.Copy(io.Discard, r.Body)
		return reply(w, http.StatusPreconditionFailed, "precondition failed: the document's ETag is "+s.current(path)), 0
	}
	var buf bytes.Buffer
	r.Body = io.NopCloser(io.TeeReader(r.Body, &buf))
	doc, err := s.read(r)
	if err != nil {
		return reply(w, http.StatusBadRequest, err.Error()), 0
	}
	doc.JobID, doc.Path = r.Header.Get("X-Ferry-Job-Id"), path
	s.mu.Lock()
	// Checked again: another PUT may have landed while this one streamed.
	if preconditionFails(r, s.etagLocked(path)) {
		s.mu.Unlock()
		return reply(w, http.StatusPreconditionFailed, "precondition failed: the document changed meanwhile"), 0
	}
	existed := s.etagLocked(path) != ""
	data := buf.Bytes()
	if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/") {
		data = nil // the file's bytes are a part of the body; GET serves none
	}
	etag := s.storeLocked(path, doc, data)
	a := docAnswer{status: http.StatusCreated, etag: etag, doc: s.resources[path].versions[len(s.resources[path].versions)-1]}
	if existed {
		a.status = http.StatusOK
	}
	if key != "" && !s.opts.IgnoreIdempotencyKey {
		s.docAnswers[key] = a
	}
	s.mu.Unlock()
	if faulted && f.after {
		dropConnection(w)
		return 0, doc.Size
	}
	return docReply(w, a), doc.Size
}

func (s *Server) etagLocked(path string) string {
	if r := s.resources[path]; r != nil && !r.deleted {
		return r.etag
	}
	return ""
}

// storeLocked adds doc as the path's new version and returns its ETag.
func (s *Server) storeLocked(path string, doc Document, data []byte) string {
	r := s.resources[path]
	if r == nil || r.deleted {
		r = &resource{}
		s.resources[path] = r
	}
	s.seq++
	doc.ID = path
	r.etag = fmt.Sprintf(`"v%d-%d"`, len(r.versions)+1, s.seq)
	r.data = data
	r.versions = append(r.versions, doc)
	s.docs = append(s.docs, doc)
	return r.etag
}

func docReply(w http.ResponseWriter, a docAnswer) int {
	w.Header().Set("ETag", a.etag)
	w.Header().Set("Location", a.doc.Path)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(a.status)
	_ = json.NewEncoder(w).Encode(map[string]any{"id": a.doc.Path, "sha256": a.doc.SHA256, "size": a.doc.Size})
	return a.status
}

func (s *Server) readDocument(w http.ResponseWriter, r *http.Request) int {
	path := r.URL.EscapedPath()
	s.mu.Lock()
	if s.probeFaults > 0 {
		s.probeFaults--
		s.mu.Unlock()
		return reply(w, http.StatusServiceUnavailable, "injected: lookup unavailable")
	}
	res := s.resources[path]
	var cur resource
	if res != nil {
		cur = *res
	}
	s.mu.Unlock()
	if res == nil || cur.deleted {
		return reply(w, http.StatusNotFound, "no document at "+path)
	}
	last := cur.versions[len(cur.versions)-1]
	w.Header().Set("ETag", cur.etag)
	if !s.opts.NoReprDigest {
		raw, _ := hex.DecodeString(last.SHA256)
		w.Header().Set("Repr-Digest", "sha-256=:"+base64.StdEncoding.EncodeToString(raw)+":")
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(len(cur.data)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(cur.data)
	}
	return http.StatusOK
}

func (s *Server) deleteDocument(w http.ResponseWriter, r *http.Request) int {
	path := r.URL.EscapedPath()
	f, faulted := s.nextFault(StepDelete)
	if faulted && !f.after {
		return s.injected(w, f)
	}
	s.mu.Lock()
	etag := s.etagLocked(path)
	switch {
	case etag == "":
		s.mu.Unlock()
		return reply(w, http.StatusNotFound, "no document at "+path)
	case preconditionFails(r, etag):
		s.mu.Unlock()
		return reply(w, http.StatusPreconditionFailed, "precondition failed: the document's ETag is "+etag)
	}
	s.resources[path].deleted = true
	s.mu.Unlock()
	if faulted && f.after {
		dropConnection(w)
		return 0
	}
	w.WriteHeader(http.StatusNoContent)
	return http.StatusNoContent
}
