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
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"path"
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

func (s *Server) uploadInit(w http.ResponseWriter, r *http.Request, rec *Request) {
	q := r.URL.Query()
	parent, name := q.Get("parentId"), q.Get("filename")
	switch {
	case parent == "":
		s.replyError(w, rec, http.StatusBadRequest, "parentId is required")
		return
	case name == "":
		s.replyError(w, rec, http.StatusBadRequest, "filename is required")
		return
	case len(s.opts.Folders) > 0 && !slices.Contains(s.opts.Folders, parent):
		s.replyError(w, rec, http.StatusNotFound, "parent folder not found")
		return
	}
	fault := s.takeFault(StepUploadInit)
	if s.faultBefore(w, r, rec, fault) {
		return
	}

	s.mu.Lock()
	if f := s.versionLocked(q.Get("documentId"), q.Get("documentVersionId")); f != nil {
		// A version of a document the provider holds (versions.go).
		meta := metadataOf(r, *f)
		s.mu.Unlock()
		s.answerInit(w, rec, fault, meta)
		return
	}
	if s.opts.UniqueNames && s.nameTakenLocked(parent, name) {
		s.mu.Unlock()
		s.replyError(w, rec, http.StatusConflict, "a file of that name exists in the folder")
		return
	}
	f := &File{
		ID:                newID(),
		ParentID:          parent,
		Title:             name,
		DocumentID:        q.Get("documentId"),
		DocumentVersionID: q.Get("documentVersionId"),
		MimeType:          guessType(name),
		DateModified:      s.opts.Now().UTC(),
		Versions:          []FileVersion{{VersionID: q.Get("documentVersionId")}},
	}
	s.files[f.ID] = f
	s.order = append(s.order, f.ID)
	s.inits++
	meta := metadataOf(r, *f)
	s.mu.Unlock()
	s.answerInit(w, rec, fault, meta)
}

// answerInit answers uploadInit with the file's metadata, or loses the
// answer as the fault says.
func (s *Server) answerInit(w http.ResponseWriter, rec *Request, fault *Fault, meta Metadata) {
	if fault != nil && fault.Mode == ModeDropAfter {
		s.drop(w, rec, fault.Mode)
		return
	}
	s.reply(w, rec, http.StatusOK, meta)
}

func (s *Server) nameTakenLocked(parent, name string) bool {
	for _, f := range s.files {
		if f.Uploads > 0 && f.ParentID == parent && f.Title == name {
			return true
		}
	}
	return false
}

func (s *Server) upload(w http.ResponseWriter, r *http.Request, rec *Request) {
	id := r.URL.Query().Get("id")
	mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch {
	case id == "":
		s.replyError(w, rec, http.StatusBadRequest, "id is required")
		return
	case mediaType == "multipart/form-data":
		s.replyError(w, rec, http.StatusUnsupportedMediaType, "send the raw bytes of the document as the body")
		return
	}
	fault := s.takeFault(StepUpload)
	if fault != nil && fault.Mode == ModeForget {
		s.forgetPlaceholder(id)
		rec.Fault = fault.Mode
	}
	if s.faultBefore(w, r, rec, fault) {
		return
	}
	s.mu.Lock()
	_, known := s.files[id]
	s.mu.Unlock()
	if !known {
		s.replyError(w, rec, http.StatusNotFound, "document not found")
		return
	}
	if s.opts.MaxFileBytes > 0 && r.ContentLength > s.opts.MaxFileBytes {
		s.replyError(w, rec, http.StatusRequestEntityTooLarge, fmt.Sprintf("file larger than %d bytes", s.opts.MaxFileBytes))
		return
	}

	sum, size, err := s.hashBody(r.Body)
	rec.SHA256, rec.Size = sum, size
	switch {
	case errors.Is(err, errTooLarge):
		s.replyError(w, rec, http.StatusRequestEntityTooLarge, fmt.Sprintf("file larger than %d bytes", s.opts.MaxFileBytes))
		return
	case err != nil:
		// The client went away or sent less than it announced.
		s.reply(w, rec, http.StatusOK, uploadResult{Result: resultFail, Message: "Upload Failed"})
		return
	case fault != nil && fault.Mode == ModeResultFail:
		s.reply(w, rec, http.StatusOK, uploadResult{Result: resultFail, Message: "Upload Failed"})
		return
	}

	s.mu.Lock()
	f, known := s.files[id]
	if known {
		f.SHA256, f.Size = sum, size
		f.Uploads++
		f.wroteVersion(sum, size)
		f.DateModified = s.opts.Now().UTC()
		if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err == nil && mt != "application/octet-stream" {
			f.MimeType = mt
		}
	}
	s.mu.Unlock()
	if !known { // forgotten or reset while the bytes streamed in
		s.replyError(w, rec, http.StatusNotFound, "document not found")
		return
	}
	if fault != nil && fault.Mode == ModeDropAfter {
		s.drop(w, rec, fault.Mode)
		return
	}
	s.reply(w, rec, http.StatusOK, uploadResult{Result: resultSuccess})
}

var errTooLarge = errors.New("body over the size limit")

// hashBody reads the body to its end, returning its SHA-256 and size.
func (s *Server) hashBody(body io.Reader) (string, int64, error) {
	h := sha256.New()
	var n int64
	var err error
	if s.opts.MaxFileBytes > 0 {
		n, err = io.Copy(h, io.LimitReader(body, s.opts.MaxFileBytes+1))
		if err == nil && n > s.opts.MaxFileBytes {
			err = errTooLarge
		}
	} else {
		n, err = io.Copy(h, body)
	}
	return hex.EncodeToString(h.Sum(nil)), n, err
}

func (s *Server) metadata(w http.ResponseWriter, r *http.Request, rec *Request) {
	id := r.URL.Query().Get("id")
	if id == "" {
		s.replyError(w, rec, http.StatusBadRequest, "id is required")
		return
	}
	s.mu.Lock()
	f, ok := s.files[id]
	var meta Metadata
	if ok {
		meta = metadataOf(r, *f)
		// A placeholder has no file behind it yet, as in the reference
		// provider.
		ok = f.Uploads > 0
	}
	s.mu.Unlock()
	if !ok {
		s.replyError(w, rec, http.StatusNotFound, "document not found")
		return
	}
	s.reply(w, rec, http.StatusOK, meta)
}

// Metadata is a file's metadata as the spec's /metadata endpoint defines
// it; uploadInit answers it too.
type Metadata struct {
	Title        string `json:"title"`
	Kind         string `json:"kind"`
	ID           string `json:"id"`
	ViewLink     string `json:"viewLink"`
	DownloadLink string `json:"downloadLink"`
	MimeType     string `json:"mimeType,omitempty"`
	DateModified string `json:"dateModified"`
	Size         int64  `json:"size"`
	ReadOnly     bool   `json:"readOnly"`
}

// metadataOf describes f. The links point at /view and /download, which
// the fake does not serve: it keeps no bytes.
func metadataOf(r *http.Request, f File) Metadata {
	base := "http://" + r.Host
	if r.TLS != nil {
		base = "https://" + r.Host
	}
	return Metadata{
		Title:        f.Title,
		Kind:         "file",
		ID:           f.ID,
		ViewLink:     base + "/view?id=" + f.ID,
		DownloadLink: base + "/download?id=" + f.ID,
		MimeType:     f.MimeType,
		DateModified: f.DateModified.Format(time.RFC3339),
		Size:         f.Size,
	}
}

const (
	resultSuccess = "success"
	resultFail    = "fail"
)

type uploadResult struct {
	Result  string `json:"result"`
	Message string `json:"message,omitempty"`
}

// Documents lists the uploaded documents, oldest first.
func (s *Server) Documents() []contract.Document {
	var docs []contract.Document
	for _, f := range s.Files() {
		docs = append(docs, contract.Document{RemoteID: f.ID, Name: f.Title, SHA256: f.SHA256, Size: f.Size})
	}
	return docs
}

// Files lists the uploaded documents in full, oldest first.
func (s *Server) Files() []File {
	return s.list(func(f *File) bool { return f.Uploads > 0 })
}

// Placeholders lists the documents uploadInit created whose bytes never
// arrived, oldest first.
func (s *Server) Placeholders() []File {
	return s.list(func(f *File) bool { return f.Uploads == 0 })
}

func (s *Server) list(keep func(*File) bool) []File {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []File
	for _, id := range s.order {
		if f, ok := s.files[id]; ok && keep(f) {
			g := *f
			g.Versions = slices.Clone(f.Versions)
			out = append(out, g)
		}
	}
	return out
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

// forgetPlaceholder deletes id if it is still a placeholder, as a provider
// that expires unfinished uploads would.
func (s *Server) forgetPlaceholder(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f, ok := s.files[id]; ok && f.Uploads == 0 {
		delete(s.files, id)
	}
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

func guessType(name string) string {
	if t := mime.TypeByExtension(path.Ext(name)); t != "" {
		if mt, _, err := mime.ParseMediaType(t); err == nil {
			return mt
		}
	}
	return "application/octet-stream"
}
