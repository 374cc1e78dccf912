// Package workfront is a fake Adobe Workfront REST API (version 15.0) for
// tests and demos: login, file upload and document creation, as strict as
// the real API about what it refuses, with fault injection, a record of
// what arrived and a count of concurrent requests.
//
// It serves, under /attask/api/v15.0:
//
//	GET|POST /login     username=&password= (query or form body) → {"data":{"sessionID","userID"}}
//	GET|POST /logout    ends the session given
//	POST     /upload    multipart/form-data, the file in uploadedFile → {"data":{"handle"}}
//	POST     /document  name, handle, docObjCode, objID, extRefID, description as
//	                    parameters or in updates={json} (query or form body) → {"data":{"ID",...}}
//	GET      /document/{id}, /document/search?field=value
//	DELETE   /document/{id}   deletes the document (versions.go)
//	POST     /docv            a new version of a document: documentID, handle, fileName...
//	GET      /docv/search?field=value
//	/_fake/...          the control API (documents, requests, fail, expire, reset, stats)
//
// Every request but login needs a session (SessionID header or sessionID
// parameter) or an API key (apiKey parameter or header). As Workfront does,
// the method parameter overrides the HTTP method (GET ...?method=post), and
// the object type is case-insensitive and may be the ObjCode (docu) or the
// name (document). Errors are {"error":{"class","message"}} with a 4xx or
// 5xx status. File bytes are hashed while they stream in; only their
// SHA-256 and size are kept.
//
// Where Workfront's documentation is silent the fake chooses, and says so
// on the option or method concerned: the error classes other than
// com.attask.common.AuthenticationException are modelled on Workfront's
// naming, not copied from it; AuthenticationException and, for unknown
// fields, java.lang.IllegalArgumentException are Workfront's own.
package workfront

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ferry-relay/ferry/internal/fakes/contract"
)

// APIPath is the prefix of every API endpoint the fake serves.
const APIPath = "/attask/api/v15.0"

// Defaults of Options.
const (
	UsernameDefault = "ferry@example.com"
	PasswordDefault = "ferry-password"
	APIKeyDefault   = "ferry-api-key"
	// MaxConcurrentDefault is Workfront's limit of ten concurrent API
	// requests per customer.
	MaxConcurrentDefault = 10
	// HandleTTLDefault is how long an upload handle stays usable.
	// Workfront purges unclaimed uploads after a while without saying how
	// long; an hour is the fake's choice.
	HandleTTLDefault = time.Hour
)

// MaxURIBytes is the longest request URI Workfront's CDN passes: longer
// ones get 414.
const MaxURIBytes = 8892

// UserID is the ID of the user every session belongs to.
const UserID = "5f0c9a1e000a1b2c3d4e5f60718293a0"

// Objects every new fake knows, to attach documents to.
const (
	DemoProjectID = "5f0c9a1e000a1b2c3d4e5f60718293a1" // a PROJ
	DemoTaskID    = "5f0c9a1e000a1b2c3d4e5f60718293a2" // a TASK
	DemoIssueID   = "5f0c9a1e000a1b2c3d4e5f60718293a3" // an OPTASK
)

// The steps of the protocol, as Fail and FailNext name them.
const (
	StepLogin    = "login"
	StepLogout   = "logout"
	StepUpload   = "upload"
	StepDocument = "document"
	StepSearch   = "search"
	StepGet      = "get"
	// StepDelete is DELETE document/{id} (versions.go).
	StepDelete = "delete"
	// StepDocv is POST docv, a new version of a document.
	StepDocv = "docv"
	// StepDocvFind is GET docv/search.
	StepDocvFind = "docv search"
	// StepLookup, for Inject, hits whichever search comes next:
	// document or docv.
	StepLookup = "lookup"
)

// Error classes of the error envelope.
const (
	ClassAuthentication   = "com.attask.common.AuthenticationException"
	ClassInvalidParameter = "com.attask.common.InvalidParameterException"
	ClassNotFound         = "com.attask.common.NotFoundException"
	ClassInternal         = "com.attask.common.InternalException"
	ClassTooManyRequests  = "com.attask.common.TooManyRequestsException"
	// ClassIllegalArgument is what Workfront answers for a field its API
	// model lacks: "APIModel V15_0 does not support field x (Document)".
	ClassIllegalArgument = "java.lang.IllegalArgumentException"
)

// DocObjCodes are the object codes a document may be attached to.
var DocObjCodes = []string{"OPTASK", "PORT", "PRGM", "PROJ", "TASK", "TMPL", "TTSK", "USER"}

// Options configure the fake instance. The zero value works: user
// ferry@example.com with password ferry-password, API key ferry-api-key,
// the three demo objects, ten concurrent requests and one-hour handles.
type Options struct {
	// Username and Password are the only ones login accepts.
	Username string
	Password string
	// APIKey is the only API key accepted.
	APIKey string
	// Objects maps the IDs of the objects documents may be attached to to
	// their object code (PROJ, TASK, ...). Default: the demo objects.
	Objects map[string]string
	// MaxConcurrent is the most API requests served at once; the next one
	// gets 429. Workfront limits each customer to ten concurrent requests
	// without documenting its answer beyond that: 429 is the fake's
	// choice. Negative means no limit.
	MaxConcurrent int
	// HandleTTL is how long an upload handle stays usable.
	HandleTTL time.Duration
	// Now is the clock for handle expiry (default time.Now).
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	o.Username = cmp.Or(o.Username, UsernameDefault)
	o.Password = cmp.Or(o.Password, PasswordDefault)
	o.APIKey = cmp.Or(o.APIKey, APIKeyDefault)
	if o.Objects == nil {
		o.Objects = map[string]string{DemoProjectID: "PROJ", DemoTaskID: "TASK", DemoIssueID: "OPTASK"}
	}
	o.MaxConcurrent = cmp.Or(o.MaxConcurrent, MaxConcurrentDefault)
	o.HandleTTL = cmp.Or(o.HandleTTL, HandleTTLDefault)
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// StoredDocument is a document created in the fake.
type StoredDocument struct {
	ID          string    `json:"ID"`
	Name        string    `json:"name"`
	DocObjCode  string    `json:"docObjCode"`
	ObjID       string    `json:"objID"`
	ExtRefID    string    `json:"extRefID,omitempty"`
	Description string    `json:"description,omitempty"`
	Version     string    `json:"version,omitempty"`
	FileName    string    `json:"fileName"`
	Ext         string    `json:"ext,omitempty"`
	Handle      string    `json:"handle"`
	ContentType string    `json:"contentType,omitempty"`
	Size        int64     `json:"size"`
	SHA256      string    `json:"sha256"`
	Created     time.Time `json:"created"`
	// CurrentVersionID is the ID of the document's latest version.
	CurrentVersionID string `json:"currentVersionID"`
	// Versions are the document's versions (DocumentVersion, DOCV),
	// oldest first: the one its creation made, then one per POST docv.
	// The fields above (handle, size, sha256...) are the latest's.
	Versions []StoredVersion `json:"versions"`
}

// Request is what the fake saw of one API request, without secrets: no
// password, API key or session ID is recorded, only which kind of
// credential came and where.
type Request struct {
	Time   time.Time `json:"time"`
	Step   string    `json:"step"`
	Method string    `json:"method"`
	Path   string    `json:"path"`
	// QueryKeys are the names of the query parameters, sorted.
	QueryKeys []string `json:"queryKeys,omitempty"`
	// Auth is "session", "apiKey", "none" or "invalid"; empty when the
	// request was refused before its credentials were looked at.
	Auth        string `json:"auth"`
	ContentType string `json:"contentType,omitempty"`
	// ContentLength is the request's Content-Length, -1 if unknown.
	ContentLength int64 `json:"contentLength"`
	// Status is the HTTP status answered, 0 if the connection was dropped.
	Status int `json:"status"`
	// ErrorClass is the class of the error envelope answered, if any.
	ErrorClass string `json:"errorClass,omitempty"`
	// Fault is the injected fault applied, if any.
	Fault string `json:"fault,omitempty"`
	// Upload: the file part's name and what arrived of it.
	FileName string `json:"fileName,omitempty"`
	Size     int64  `json:"size,omitempty"`
	SHA256   string `json:"sha256,omitempty"`
	// Handle is the handle given (upload) or used (document).
	Handle string `json:"handle,omitempty"`
	// DocumentID is the document created.
	DocumentID string `json:"documentID,omitempty"`
}

// upload is a file received and not yet claimed by a document.
type upload struct {
	fileName    string
	contentType string
	size        int64
	sha256      string
	created     time.Time
}

// Server is the fake Workfront instance. It is an http.Handler.
type Server struct {
	opts Options

	mu          sync.Mutex
	sessions    map[string]bool
	uploads     map[string]upload // handle → file
	claimed     map[string]bool   // handles used by a document
	docs        []StoredDocument
	deleted     int // documents deleted, for Creations
	requests    []Request
	faults      map[string][]Fault
	inFlight    int
	maxInFlight int
	resets      int
	refuseUntil time.Time
}

var _ contract.Fake = (*Server)(nil)

// New returns a fake instance configured by opts.
func New(opts Options) *Server {
	s := &Server{opts: opts.withDefaults()}
	s.Reset()
	return s
}

// Reset forgets documents, uploads, sessions, requests, faults and the
// concurrency peak.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sessions = map[string]bool{}
	s.uploads = map[string]upload{}
	s.claimed = map[string]bool{}
	s.docs = nil
	s.deleted = 0
	s.requests = nil
	s.faults = map[string][]Fault{}
	s.maxInFlight = s.inFlight
	s.refuseUntil = time.Time{}
	s.resets++
}

// Steps are the steps of one delivery, in order.
func (s *Server) Steps() []string { return []string{StepLogin, StepUpload, StepDocument} }

// ExpireCredentials ends every session, as when Workfront's sessions time
// out: the next request with one gets 401. API keys stay valid.
func (s *Server) ExpireCredentials() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.sessions)
}

// ExpireHandles makes every unclaimed upload handle unknown, as when
// Workfront purges uploads no document claimed.
func (s *Server) ExpireHandles() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.uploads)
}

// StoredDocuments lists the documents created, oldest first.
func (s *Server) StoredDocuments() []StoredDocument {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.docs)
}

// Documents lists the documents created, for the conformance suite. The
// remote id is the document's ID.
func (s *Server) Documents() []contract.Document {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]contract.Document, 0, len(s.docs))
	for _, d := range s.docs {
		out = append(out, contract.Document{RemoteID: d.ID, Name: d.Name, SHA256: d.SHA256, Size: d.Size})
	}
	return out
}

// Requests lists the API requests received, oldest first.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// StepsTaken lists the step of every API request received, oldest first.
func (s *Server) StepsTaken() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.requests))
	for _, r := range s.requests {
		out = append(out, r.Step)
	}
	return out
}

// MaxConcurrent is the most API requests the fake has served at once since
// it was made or reset.
func (s *Server) MaxConcurrent() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxInFlight
}

// ServeHTTP routes to the API and the control API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/_fake/") {
		s.serveControl(w, r)
		return
	}
	s.serveAPI(w, r)
}

// enter counts a request in flight; it returns false, having counted
// nothing, when the limit is reached.
func (s *Server) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.opts.MaxConcurrent > 0 && s.inFlight >= s.opts.MaxConcurrent {
		return false
	}
	s.inFlight++
	s.maxInFlight = max(s.maxInFlight, s.inFlight)
	return true
}

func (s *Server) leave() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inFlight--
}

// slot is the place of a request in the list of those received.
type slot struct{ resets, i int }

// record lists a request that arrived and returns its place in the list.
func (s *Server) record(req Request) slot {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, req)
	return slot{s.resets, len(s.requests) - 1}
}

// update replaces the record in place at, unless Reset came in between.
func (s *Server) update(at slot, req Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if at.resets == s.resets {
		s.requests[at.i] = req
	}
}

// newID returns a Workfront-style ID: 32 hex digits.
func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // never fails
	return hex.EncodeToString(b)
}

// queryKeys returns the sorted names of r's query parameters.
func queryKeys(r *http.Request) []string {
	q := r.URL.Query()
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// apiError is the body of Workfront's error envelope.
type apiError struct {
	Class   string `json:"class"`
	Message string `json:"message"`
}

// writeData answers {"data": v}.
func writeData(w http.ResponseWriter, v any) {
	writeJSON(w, http.StatusOK, map[string]any{"data": v})
}

// writeError drains what is left of the request body, so that the client
// reads the answer rather than a reset connection, and answers the error
// envelope.
func writeError(w http.ResponseWriter, r *http.Request, rec *Request, status int, class, msg string) {
	_, _ = io.Copy(io.Discard, r.Body)
	rec.ErrorClass = class
	writeJSON(w, status, map[string]any{"error": apiError{Class: class, Message: msg}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
