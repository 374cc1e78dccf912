// Package sink is a fake HTTP target for ferry's kind "http": it takes
// files by PUT or POST, raw or multipart, records what arrived (name, size,
// SHA-256, job id) and, with Options.Dir, writes each file to disk.
//
// Its behaviour depends on the first path segment, so one sink can play a
// healthy, a flaky and a refusing target at once:
//
//	/flaky/...   answers 503 to the first FlakyFailures attempts of each job
//	/refuse/...  always answers 422 (a permanent refusal)
//	/slow/...    waits SlowDelay before answering
//	/docs/...    a document path: PUT, GET, HEAD and DELETE with ETags and
//	             preconditions, for versions: put (documents.go)
//	anything else accepts with 201 and {"id": "<document id>"}
//
// It honours the Idempotency-Key header (IETF
// draft-ietf-httpapi-idempotency-key-header): a request whose key names a
// document already stored is answered that document's 201 again, and stores
// nothing, unless Options.IgnoreIdempotencyKey. GET or HEAD
// /_probe/{job id}[?sha256=] answers 200 when a document of that job (with
// that SHA-256) is stored and 404 when none is: the lookup a probe_url of
// kind http points at. With Options.Token every upload needs
// "Authorization: Bearer <token>" (401 otherwise).
//
// Faults can also be injected for the next requests (Fail) or at random
// (Options.FailRate), and through a control API under /_fake/.
package sink

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Options configure a Server.
type Options struct {
	// Dir, if set, receives a copy of every accepted file.
	Dir string
	// FlakyFailures is how many attempts of each job /flaky/ refuses
	// (default 2).
	FlakyFailures int
	// SlowDelay is how long /slow/ waits (default 2s).
	SlowDelay time.Duration
	// FailRate is the probability that any request fails with 503.
	FailRate float64
	// IgnoreIdempotencyKey makes the sink store every request, as a
	// receiver that does not honour Idempotency-Key.
	IgnoreIdempotencyKey bool
	// Token, when set, is the bearer token every upload must carry.
	Token string
	// NoReprDigest leaves Repr-Digest out of the answers to HEAD and GET
	// on document paths, as a receiver that does not send it.
	NoReprDigest bool
}

// Document is a file the sink accepted.
type Document struct {
	ID       string    `json:"id"`
	Path     string    `json:"path"`
	Name     string    `json:"name"`
	Size     int64     `json:"size"`
	SHA256   string    `json:"sha256"`
	JobID    string    `json:"job_id"`
	Received time.Time `json:"received"`
}

// Request is a request the sink answered.
type Request struct {
	Method string `json:"method"`
	Path   string `json:"path"`
	JobID  string `json:"job_id"`
	Status int    `json:"status"`
	Size   int64  `json:"size"`
}

// Server is the sink.
type Server struct {
	opts Options

	mu       sync.Mutex
	docs     []Document
	reqs     []Request
	attempts map[string]int // by job id, for /flaky/
	faults   []fault
	seq      int
	byKey    map[string]int // Idempotency-Key → index in docs
	// probeFaults is how many probes to answer 503.
	probeFaults int
	refuseUntil time.Time
	// resources are the documents at document paths (documents.go).
	resources map[string]*resource
	// docAnswers are the answers given to document PUTs, by
	// Idempotency-Key.
	docAnswers map[string]docAnswer
}

// New returns a sink.
func New(opts Options) *Server {
	if opts.FlakyFailures == 0 {
		opts.FlakyFailures = 2
	}
	if opts.SlowDelay == 0 {
		opts.SlowDelay = 2 * time.Second
	}
	return &Server{opts: opts, attempts: map[string]int{}, byKey: map[string]int{},
		resources: map[string]*resource{}, docAnswers: map[string]docAnswer{}}
}

// Creations is how many documents the sink stored.
func (s *Server) Creations() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.docs)
}

// Documents returns the accepted files, in order of arrival.
func (s *Server) Documents() []Document {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Document(nil), s.docs...)
}

// Requests returns every request answered, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.reqs...)
}

// Reset forgets documents, requests and faults.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.docs, s.reqs, s.faults, s.attempts = nil, nil, nil, map[string]int{}
	s.byKey, s.probeFaults, s.refuseUntil = map[string]int{}, 0, time.Time{}
	s.resources, s.docAnswers = map[string]*resource{}, map[string]docAnswer{}
}

// ServeHTTP answers uploads and the control API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/_fake/") {
		s.control(w, r)
		return
	}
	if strings.HasPrefix(r.URL.Path, "/_probe/") {
		s.probe(w, r)
		return
	}
	jobID := r.Header.Get("X-Ferry-Job-Id")
	var status int
	var size int64
	if strings.HasPrefix(r.URL.Path, DocumentsPath) {
		status, size = s.serveDocument(w, r)
	} else {
		status, size = s.receive(w, r, jobID)
	}
	s.mu.Lock()
	s.reqs = append(s.reqs, Request{Method: r.Method, Path: r.URL.Path, JobID: jobID, Status: status, Size: size})
	s.mu.Unlock()
}

// receive takes an upload to a path that is not a document path, in
// steps: the method and the bearer token; a key already used, answered
// again; an injected fault; the path's mode (refuse, flaky, slow); then
// the file, read and stored.
func (s *Server) receive(w http.ResponseWriter, r *http.Request, jobID string) (int, int64) {
	if r.Method != http.MethodPut && r.Method != http.MethodPost {
		w.Header().Set("Allow", "PUT, POST")
		return reply(w, http.StatusMethodNotAllowed, "use PUT or POST"), 0
	}
	if !s.authorized(r) {
		_, _ = io.Copy(io.Discard, r.Body)
		return reply(w, http.StatusUnauthorized, "missing or invalid bearer token"), 0
	}
	key := r.Header.Get("Idempotency-Key")
	if doc, seen := s.replay(key); seen {
		// The draft's answer to a key already used: the stored
		// outcome, nothing stored again.
		_, _ = io.Copy(io.Discard, r.Body)
		return created(w, doc), doc.Size
	}
	f, faulted := s.nextFault("")
	if faulted && !f.after {
		return s.injected(w, f), 0
	}
	if status, answered := s.pathMode(w, r, jobID); answered {
		return status, 0
	}
	doc, err := s.read(r)
	if err != nil {
		return reply(w, http.StatusBadRequest, err.Error()), 0
	}
	doc = s.store(doc, jobID, r.URL.Path, key)
	if faulted && f.after {
		dropConnection(w)
		return 0, doc.Size
	}
	return created(w, doc), doc.Size
}

// authorized tells whether r carries the bearer token, when one is needed
// and the sink is not refusing credentials.
func (s *Server) authorized(r *http.Request) bool {
	s.mu.Lock()
	refusing := time.Now().Before(s.refuseUntil)
	s.mu.Unlock()
	return s.opts.Token == "" || !refusing && r.Header.Get("Authorization") == "Bearer "+s.opts.Token
}

// replay returns the document stored under Idempotency-Key key, if the
// sink honours keys and one is.
func (s *Server) replay(key string) (Document, bool) {
	if key == "" || s.opts.IgnoreIdempotencyKey {
		return Document{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	i, seen := s.byKey[key]
	if !seen {
		return Document{}, false
	}
	return s.docs[i], true
}

// pathMode plays the target the first path segment names: /refuse/
// refuses, /flaky/ fails the first attempts of each job, /slow/ waits.
// It reports the status it answered (0 when the client went away) and
// whether it did answer.
func (s *Server) pathMode(w http.ResponseWriter, r *http.Request, jobID string) (int, bool) {
	mode, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	switch mode {
	case "refuse":
		return reply(w, http.StatusUnprocessableEntity, "this target refuses every document"), true
	case "flaky":
		s.mu.Lock()
		s.attempts[jobID]++
		n := s.attempts[jobID]
		s.mu.Unlock()
		if n <= s.opts.FlakyFailures {
			return reply(w, http.StatusServiceUnavailable, fmt.Sprintf("flaky: failing attempt %d of this job", n)), true
		}
	case "slow":
		select {
		case <-time.After(s.opts.SlowDelay):
		case <-r.Context().Done():
			return 0, true
		}
	}
	return 0, false
}

// store keeps doc, received for job at path, under a new id, and under
// Idempotency-Key key when the sink honours keys.
func (s *Server) store(doc Document, jobID, path, key string) Document {
	doc.JobID, doc.Path = jobID, path
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	doc.ID = fmt.Sprintf("doc-%d", s.seq)
	s.docs = append(s.docs, doc)
	if key != "" && !s.opts.IgnoreIdempotencyKey {
		s.byKey[key] = len(s.docs) - 1
	}
	return doc
}

// created answers the 201 of a stored document.
func created(w http.ResponseWriter, doc Document) int {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Location", "/documents/"+doc.ID)
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(map[string]any{"id": doc.ID, "sha256": doc.SHA256, "size": doc.Size})
	return http.StatusCreated
}

// probe answers GET or HEAD /_probe/{job id}[?sha256=]: 200 with the
// document when one of that job is stored, 404 when none is.
func (s *Server) probe(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		reply(w, http.StatusMethodNotAllowed, "use GET or HEAD")
		return
	}
	job := strings.TrimPrefix(r.URL.Path, "/_probe/")
	sum := r.URL.Query().Get("sha256")
	s.mu.Lock()
	if s.probeFaults > 0 {
		s.probeFaults--
		s.mu.Unlock()
		reply(w, http.StatusServiceUnavailable, "injected: lookup unavailable")
		return
	}
	var found *Document
	for i := range s.docs {
		if d := s.docs[i]; d.JobID == job && (sum == "" || d.SHA256 == sum) {
			found = &d
			break
		}
	}
	s.mu.Unlock()
	if found == nil {
		reply(w, http.StatusNotFound, "no document of job "+job)
		return
	}
	w.Header().Set("Location", "/documents/"+found.ID)
	writeJSON(w, map[string]any{"id": found.ID, "sha256": found.SHA256, "size": found.Size})
}

// read takes the file from a raw or multipart body, hashing as it streams.
func (s *Server) read(r *http.Request) (Document, error) {
	var body io.Reader = r.Body
	name := ""
	mt, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt == "multipart/form-data" {
		mr := multipart.NewReader(r.Body, params["boundary"])
		for {
			p, err := mr.NextPart()
			if err != nil {
				return Document{}, fmt.Errorf("multipart body without a file part: %w", err)
			}
			if p.FileName() != "" {
				body, name = p, p.FileName()
				break
			}
		}
	} else if _, dp, err := mime.ParseMediaType(r.Header.Get("Content-Disposition")); err == nil {
		name = dp["filename"] // mime decodes filename*=UTF-8'' into filename
	}
	h := sha256.New()
	var sink io.Writer = h
	var file *os.File
	if s.opts.Dir != "" {
		var err error
		file, err = os.CreateTemp(s.opts.Dir, ".incoming-*")
		if err != nil {
			return Document{}, err
		}
		defer file.Close()
		sink = io.MultiWriter(h, file)
	}
	n, err := io.Copy(sink, body)
	if err != nil {
		if file != nil {
			os.Remove(file.Name())
		}
		return Document{}, fmt.Errorf("reading body: %w", err)
	}
	if r.ContentLength >= 0 && mt != "multipart/form-data" && n != r.ContentLength {
		return Document{}, fmt.Errorf("body was %d bytes, Content-Length said %d", n, r.ContentLength)
	}
	doc := Document{Name: name, Size: n, SHA256: hex.EncodeToString(h.Sum(nil)), Received: time.Now()}
	if file != nil {
		// Never trust the name as a path: keep its last element only.
		safe := strings.NewReplacer("/", "_", "\\", "_").Replace(filepath.Base("/" + name))
		if safe == "" || safe == "." || safe == "/" {
			safe = "unnamed"
		}
		if err := os.Rename(file.Name(), filepath.Join(s.opts.Dir, doc.SHA256[:12]+"-"+safe)); err != nil {
			return Document{}, err
		}
	}
	return doc, nil
}

func reply(w http.ResponseWriter, status int, msg string) int {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
	return status
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
