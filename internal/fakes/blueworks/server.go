// Package blueworks is a fake IBM Blueworks Live for tests and demos: the
// OAuth2 client-credentials token endpoint and the FileUpload API, as
// strict as the real ones, with fault injection and a record of what
// arrived.
//
// It serves:
//
//	POST /oauth/token          grant_type=client_credentials&client_id=&client_secret=
//	POST /scr/api/FileUpload   multipart: fileData, locationField, ancestorIdField, parentIdField
//	GET  /scr/api/ListFiles    ?from=<ISO 8601 date>; administrators only (see list.go)
//	/_fake/...                 the control API (documents, requests, fail, expire, reset)
//
// File bytes are hashed while they stream in; only their SHA-256 and size
// are kept.
package blueworks

import (
	"cmp"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ferry-relay/ferry/internal/fakes/contract"
)

// Defaults of Options.
const (
	ClientIDDefault     = "ferry"
	ClientSecretDefault = "ferry-secret"
	UserDefault         = "admin"
	TokenTTLDefault     = time.Hour
	MaxFileBytesDefault = 50 << 20 // Blueworks Live's 50 MB
	QuotaBytesDefault   = 1 << 30
	// APIVersion is the only X-IBM-API-Version FileUpload accepts.
	APIVersion = "20160630"
)

// The steps of the protocol, as Fail and FailNext name them.
const (
	StepToken  = "token"
	StepUpload = "FileUpload"
)

// Options configure the fake account. The zero value works: client
// "ferry"/"ferry-secret", a User Service ID, user "admin", one-hour tokens,
// the 50 MB limit and 1 GiB of space.
type Options struct {
	// ClientID and ClientSecret are the only credentials the token
	// endpoint accepts.
	ClientID     string
	ClientSecret string
	// ServiceID makes the client a Service ID rather than a User Service
	// ID: FileUpload then requires X-On-Behalf-Of.
	ServiceID bool
	// Users are the usernames in the account; X-On-Behalf-Of must name
	// one. The first is the uploader when no X-On-Behalf-Of is sent.
	Users []string
	// Admins are the users who are account administrators, the only ones
	// ListFiles answers. Default: the first user, when Users is not set
	// either (so that the zero Options can list); with Users set and
	// Admins not, nobody is an administrator.
	Admins []string
	// TokenTTL is the lifetime of issued tokens.
	TokenTTL time.Duration
	// MaxFileBytes is the upload limit: a larger file gets status SIZE.
	MaxFileBytes int64
	// QuotaBytes is the account's space: an upload that does not fit gets
	// status SPACE.
	QuotaBytes int64
	// KnownIDs, when not empty, are the only ancestor and parent ids the
	// user may attach to; others get 403, as an item the user has no
	// author access to.
	KnownIDs []string
	// Now is the clock for token expiry (default time.Now).
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	o.ClientID = cmp.Or(o.ClientID, ClientIDDefault)
	o.ClientSecret = cmp.Or(o.ClientSecret, ClientSecretDefault)
	if len(o.Users) == 0 {
		o.Users = []string{UserDefault}
		if o.Admins == nil {
			o.Admins = []string{UserDefault}
		}
	}
	o.TokenTTL = cmp.Or(o.TokenTTL, TokenTTLDefault)
	o.MaxFileBytes = cmp.Or(o.MaxFileBytes, MaxFileBytesDefault)
	o.QuotaBytes = cmp.Or(o.QuotaBytes, QuotaBytesDefault)
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Attachment is a file stored in the fake account.
type Attachment struct {
	ID          string    `json:"id"`
	FileItemID  string    `json:"fileItemId"`
	Name        string    `json:"name"`
	ContentType string    `json:"contentType"`
	Size        int64     `json:"size"`
	SHA256      string    `json:"sha256"`
	Location    string    `json:"location"`
	AncestorID  string    `json:"ancestorId"`
	ParentID    string    `json:"parentId"`
	Type        string    `json:"type"`
	UploadUser  string    `json:"uploadUserName"`
	UploadDate  time.Time `json:"uploadDate"`
}

// Request is what the fake saw of one request, without secrets: neither
// the client secret nor any token is recorded.
type Request struct {
	Time   time.Time `json:"time"`
	Step   string    `json:"step"`
	Method string    `json:"method"`
	Path   string    `json:"path"`
	// Status is the HTTP status answered, 0 if the connection was dropped.
	Status int `json:"status"`
	// UploadStatus is FileUpload's status field when it answered 200.
	UploadStatus string `json:"uploadStatus,omitempty"`
	Dropped      bool   `json:"dropped,omitempty"`
	// Fault is the injected fault that answered, if any.
	Fault       string `json:"fault,omitempty"`
	ContentType string `json:"contentType,omitempty"`
	// Bearer says an Authorization: Bearer header was present.
	Bearer     bool   `json:"bearer,omitempty"`
	APIVersion string `json:"apiVersion,omitempty"`
	OnBehalfOf string `json:"onBehalfOf,omitempty"`
	GrantType  string `json:"grantType,omitempty"`
	ClientID   string `json:"clientId,omitempty"`
	Location   string `json:"location,omitempty"`
	AncestorID string `json:"ancestorId,omitempty"`
	ParentID   string `json:"parentId,omitempty"`
	Filename   string `json:"filename,omitempty"`
	Size       int64  `json:"size,omitempty"`
	SHA256     string `json:"sha256,omitempty"`
	// Error is the fake's reason for a refusal.
	Error string `json:"error,omitempty"`
}

// Server is the fake Blueworks Live. It is an http.Handler.
type Server struct {
	opts Options

	mu          sync.Mutex
	tokens      map[string]time.Time // token → expiry
	attachments []Attachment
	used        int64
	requests    []Request
	faults      map[string][]fault
	seq         int
	refuseUntil time.Time
}

var _ contract.Fake = (*Server)(nil)

// New returns a fake account configured by opts.
func New(opts Options) *Server {
	s := &Server{opts: opts.withDefaults()}
	s.Reset()
	return s
}

// ServeHTTP routes to the token endpoint, FileUpload and the control API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	step := map[string]string{"/oauth/token": StepToken, "/scr/api/FileUpload": StepUpload, "/scr/api/ListFiles": StepList}[r.URL.Path]
	if f, lose := s.take(step + afterKey); step != "" && lose {
		// Phase "after": serve the request in full, then lose the
		// answer the way f says.
		s.serve(discardWriter{h: http.Header{}}, r)
		loseAnswer(w, r, f.lost)
		return
	}
	s.serve(w, r)
}

// discardWriter loses the answer of a request whose answer is lost.
type discardWriter struct{ h http.Header }

func (d discardWriter) Header() http.Header         { return d.h }
func (d discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d discardWriter) WriteHeader(int)             {}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/oauth/token":
		s.serveToken(w, r)
	case r.URL.Path == "/scr/api/FileUpload":
		s.serveUpload(w, r)
	case r.URL.Path == "/scr/api/ListFiles":
		s.serveList(w, r)
	case strings.HasPrefix(r.URL.Path, "/_fake/"):
		s.serveControl(w, r)
	default:
		s.record(Request{Method: r.Method, Path: r.URL.Path, Status: http.StatusNotFound})
		writeError(w, http.StatusNotFound, "not_found", "no such resource")
	}
}

// Reset forgets documents, requests, tokens, used space and faults.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens = map[string]time.Time{}
	s.attachments = nil
	s.used = 0
	s.requests = nil
	s.faults = map[string][]fault{}
	s.refuseUntil = time.Time{}
}

// Attachments lists the files stored, oldest first.
func (s *Server) Attachments() []Attachment {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.attachments)
}

// Documents lists the files stored, for the conformance suite. The remote
// id is the attachment's id, the one FileDownload takes.
func (s *Server) Documents() []contract.Document {
	s.mu.Lock()
	defer s.mu.Unlock()
	docs := make([]contract.Document, 0, len(s.attachments))
	for _, a := range s.attachments {
		docs = append(docs, contract.Document{RemoteID: a.ID, Name: a.Name, SHA256: a.SHA256, Size: a.Size})
	}
	return docs
}

// Requests lists the requests seen, oldest first.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// UsedBytes is the space the stored files take in the account.
func (s *Server) UsedBytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.used
}

// Steps names the protocol's steps: a token, then the upload.
func (s *Server) Steps() []string { return []string{StepToken, StepUpload} }

// ExpireCredentials ends every token issued so far, as if they expired.
func (s *Server) ExpireCredentials() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.tokens)
}

func (s *Server) record(r Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r.Time = s.opts.Now()
	s.requests = append(s.requests, r)
}

// writeJSON answers v as JSON with the status code.
func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError answers an error envelope. Blueworks documents no error body
// for its REST API; the fake answers {"error": code, "message": text}, and
// OAuth2's {"error", "error_description"} on the token endpoint and for
// bearer token refusals.
func writeError(w http.ResponseWriter, code int, errCode, msg string) {
	writeJSON(w, code, map[string]string{"error": errCode, "message": msg})
}

func writeOAuthError(w http.ResponseWriter, code int, errCode, desc string) {
	writeJSON(w, code, map[string]string{"error": errCode, "error_description": desc})
}
