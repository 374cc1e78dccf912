// Package workfronthook is a fake document storage provider that speaks the
// upload half of Adobe Workfront's Document Webhooks API, the protocol a
// provider implements so that Workfront (and ferry) can store files in it:
//
//	POST {base}/uploadInit?parentId=&filename=[&documentId=&documentVersionId=]
//	     creates the document and answers its metadata, including the
//	     provider's id for it;
//	PUT  {base}/upload?id=<that id>
//	     carries the raw bytes and answers {"result":"success"} or
//	     {"result":"fail"};
//	GET  {base}/metadata?id=<that id>
//	     answers the metadata of an uploaded file.
//
// Every call carries the provider's API key in the "apiKey" header, as
// Workfront sends it, or in an "apiKey" query parameter. A missing or wrong
// key is answered 403 with the spec's error envelope
// {"status":"error","error":"..."}: the spec's "Document Webhooks Error
// Handling" page names 403 for missing or invalid tokens, not 401.
//
// A document created by uploadInit whose bytes never arrived is a
// placeholder: it is not listed by Documents or /_fake/documents, only by
// Placeholders, so a client that calls uploadInit twice for one file is seen
// through Placeholders and not mistaken for a complete upload.
//
// Where the spec is silent the fake behaves as follows (each choice follows
// Workfront's reference provider, github.com/Workfront/webhooks-app, unless
// said otherwise):
//   - parentId and filename are both required (400 without them); any
//     non-empty parentId names a folder unless Options.Folders lists the
//     folders that exist (404 for others).
//   - PUT /upload to an id uploadInit never gave, or that the provider has
//     forgotten, is 404. A body sent as multipart/form-data is 415: the spec
//     asks for the raw bytes.
//   - PUT /upload to a document already uploaded replaces its content and
//     answers success. The reference provider answers "fail" there (it will
//     not overwrite a file); the spec's own words, "create a zero-length
//     document, then update the contents", describe an update, and a
//     replace is what lets a client whose success response was lost retry
//     the same PUT without creating a second document.
//   - Duplicate names in one folder are allowed unless Options.UniqueNames
//     asks for the reference provider's 409.
//   - A body that breaks off is answered {"result":"fail"} and stores
//     nothing, as the reference provider does on an I/O error; the document
//     keeps its earlier content, if any.
//
// The fake keeps only the SHA-256 and size of the bytes it receives, hashing
// them as they stream in. Faults are injected with Inject, Fail and FailNext
// or over the control API under /_fake/ (see control.go).
package workfronthook

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ferry-relay/ferry/internal/fakes/contract"
)

// Defaults of Options.
const (
	// APIKeyDefault is the key New(Options{}) accepts, for demos.
	APIKeyDefault = "ferry-demo-key"
	// APIKeyNameDefault is the header and query parameter that carry the
	// key, as Workfront names it.
	APIKeyNameDefault = "apiKey"
)

// Protocol steps, as Fail, Inject and Request.Step name them.
const (
	StepUploadInit = "uploadInit"
	StepUpload     = "upload"
	StepMetadata   = "metadata"
)

// Options configure a fake provider. The zero value is a working demo
// provider that accepts APIKeyDefault.
type Options struct {
	// APIKey is the only key accepted (default APIKeyDefault).
	APIKey string
	// APIKeyHeader is the request header that may carry the key (default
	// APIKeyNameDefault).
	APIKeyHeader string
	// APIKeyQuery is the query parameter that may carry the key instead
	// (default APIKeyNameDefault).
	APIKeyQuery string
	// Folders, when not empty, are the only parentId values uploadInit
	// accepts; any other is 404. Empty accepts every non-empty parentId.
	Folders []string
	// UniqueNames refuses uploadInit with 409 when the folder already holds
	// an uploaded file of that name, as the reference provider (a file
	// system) does.
	UniqueNames bool
	// MaxFileBytes refuses larger uploads with 413; zero means no limit.
	MaxFileBytes int64
	// Now is the fake's clock (default time.Now).
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	if o.APIKey == "" {
		o.APIKey = APIKeyDefault
	}
	if o.APIKeyHeader == "" {
		o.APIKeyHeader = APIKeyNameDefault
	}
	if o.APIKeyQuery == "" {
		o.APIKeyQuery = APIKeyNameDefault
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// File is a document the fake holds.
type File struct {
	// ID is the provider's id, given by uploadInit.
	ID string `json:"id"`
	// ParentID is the folder given to uploadInit.
	ParentID string `json:"parentId"`
	// Title is the filename given to uploadInit.
	Title string `json:"title"`
	// DocumentID and DocumentVersionID are Workfront's ids, when given.
	DocumentID        string `json:"documentId,omitempty"`
	DocumentVersionID string `json:"documentVersionId,omitempty"`
	// MimeType is the Content-Type of the upload, or else guessed from the
	// title's extension.
	MimeType string `json:"mimeType"`
	// SHA256 and Size describe the bytes of the last successful upload.
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
	// Uploads counts the successful PUT /upload calls; zero means the
	// document is still a placeholder.
	Uploads int `json:"uploads"`
	// DateModified is when the document was created or last uploaded.
	DateModified time.Time `json:"dateModified"`
	// Versions are the document's versions, oldest first: one per
	// uploadInit that named a new documentVersionId of its documentId
	// (versions.go); the last is what upload writes.
	Versions []FileVersion `json:"versions"`
}

// Request is what the fake recorded of one request, without secrets.
type Request struct {
	// Step is StepUploadInit, StepUpload, StepMetadata, or "" for any other
	// path.
	Step   string `json:"step"`
	Method string `json:"method"`
	Path   string `json:"path"`
	// Query holds the query parameters, the API key removed.
	Query map[string]string `json:"query,omitempty"`
	// KeyIn says where a correct API key came: "header", "query" or "" if
	// none did.
	KeyIn         string `json:"keyIn,omitempty"`
	Username      string `json:"username,omitempty"`
	ContentType   string `json:"contentType,omitempty"`
	ContentLength int64  `json:"contentLength"`
	// SHA256 and Size describe the body bytes read, for uploads.
	SHA256 string `json:"sha256,omitempty"`
	Size   int64  `json:"size"`
	// Status is the status answered, 0 if the connection was dropped.
	Status int `json:"status"`
	// Result is the "result" of an upload answered 200.
	Result string `json:"result,omitempty"`
	// Fault is the mode of the injected fault that hit this request.
	Fault Mode `json:"fault,omitempty"`
}

// Server is the fake provider. It is an http.Handler; the zero value is not
// usable, call New.
type Server struct {
	opts Options

	mu       sync.Mutex
	files    map[string]*File
	order    []string // ids in creation order
	requests []Request
	faults   map[string][]*Fault
	// inits counts the documents uploadInit created.
	inits       int
	refuseUntil time.Time
}

var _ contract.Versioned = (*Server)(nil)

// New returns a fake provider with no documents.
func New(opts Options) *Server {
	return &Server{opts: opts.withDefaults(), files: map[string]*File{}, faults: map[string][]*Fault{}}
}

// ServeHTTP serves the protocol at the root and the control API under
// /_fake/.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/_fake/") {
		s.serveControl(w, r)
		return
	}
	rec := &Request{
		Method:        r.Method,
		Path:          r.URL.Path,
		Username:      r.Header.Get("username"),
		ContentType:   r.Header.Get("Content-Type"),
		ContentLength: r.ContentLength,
	}
	q := r.URL.Query()
	rec.Query = map[string]string{}
	for k := range q {
		if k != s.opts.APIKeyQuery {
			rec.Query[k] = q.Get(k)
		}
	}

	var allow string
	switch r.URL.Path {
	case "/uploadInit":
		rec.Step, allow = StepUploadInit, http.MethodPost
	case "/upload":
		rec.Step, allow = StepUpload, http.MethodPut
	case "/metadata":
		rec.Step, allow = StepMetadata, http.MethodGet
	default:
		s.replyError(w, rec, http.StatusNotFound, "no such endpoint")
		return
	}
	if r.Method != allow {
		w.Header().Set("Allow", allow)
		s.replyError(w, rec, http.StatusMethodNotAllowed, rec.Step+" takes "+allow)
		return
	}
	if rec.KeyIn = s.keyIn(r); rec.KeyIn == "" {
		s.replyError(w, rec, http.StatusForbidden, "missing or invalid API key")
		return
	}
	switch rec.Step {
	case StepUploadInit:
		s.uploadInit(w, r, rec)
	case StepUpload:
		s.upload(w, r, rec)
	case StepMetadata:
		s.metadata(w, r, rec)
	}
}

// keyIn returns where the correct API key came from, or "".
func (s *Server) keyIn(r *http.Request) string {
	s.mu.Lock()
	refusing := time.Now().Before(s.refuseUntil)
	s.mu.Unlock()
	switch {
	case refusing:
		return ""
	case r.Header.Get(s.opts.APIKeyHeader) == s.opts.APIKey:
		return "header"
	case r.URL.Query().Get(s.opts.APIKeyQuery) == s.opts.APIKey:
		return "query"
	}
	return ""
}

// Requests returns what the fake recorded of every protocol request, in
// order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

func (s *Server) record(r Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, r)
}

// Steps names the upload protocol's steps in order.
func (s *Server) Steps() []string { return []string{StepUploadInit, StepUpload} }

// ExpireCredentials does nothing: a Document Webhooks API key has no expiry
// and the spec has no way to renew one (only OAuth2 tokens are renewed), so
// the fake keeps accepting the key it was given. A refused key is tested by
// configuring the client with a wrong one.
func (s *Server) ExpireCredentials() {}

// Reset forgets every document, request and pending fault.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files = map[string]*File{}
	s.order = nil
	s.requests = nil
	s.faults = map[string][]*Fault{}
	s.inits = 0
	s.refuseUntil = time.Time{}
}

// reply records the request, then answers it: recording first means a
// client that has its answer finds the request in Requests.
func (s *Server) reply(w http.ResponseWriter, rec *Request, status int, v any) {
	rec.Status = status
	if res, ok := v.(uploadResult); ok {
		rec.Result = res.Result
	}
	s.record(*rec)
	writeJSON(w, status, v)
}

// errorBody is the spec's error envelope.
type errorBody struct {
	Status string `json:"status"`
	Error  string `json:"error"`
}

func (s *Server) replyError(w http.ResponseWriter, rec *Request, status int, msg string) {
	s.reply(w, rec, status, errorBody{Status: "error", Error: msg})
}

// newID returns an id shaped like Workfront's: 32 hex digits.
func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}
