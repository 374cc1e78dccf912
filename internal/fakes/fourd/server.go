// Package fourd is a fake 4D server speaking the part of 4D's REST API that
// ferry uses to put a file into an attribute of an entity:
//
//	POST {base}/rest/$directory/login      headers username-4D, password-4D;
//	     answers {"result":true} and a session cookie, or {"result":false}
//	GET  {base}/rest/{Dataclass}({key})     answers the entity, with __STAMP
//	POST {base}/rest/$upload?$binary=true   (or $rawPict=true, optional
//	     $timeout=<seconds>) carries the raw bytes; answers {"ID":"<32 hex>"}
//	POST {base}/rest/{Dataclass}?$method=update
//	     body {"__KEY":"..","__STAMP":N,"<attribute>":{"ID":"<upload id>"}}
//	     stores the uploaded bytes in the attribute and answers the entity
//	     with its new __STAMP
//
// When Options.Username is set the fake behaves as a 4D server with "force
// login": every request but the login needs the session cookie the login
// set, otherwise it is 401. Without it REST is open and no session is
// needed (the zero Options, for demos).
//
// The fake follows 4D's documentation (developer.4d.com, REST pages
// $upload, $method, $directory, {dataClass}({key}), "About REST requests")
// and chooses as follows where it is silent:
//   - A refused $method=update is answered 500 ("Error processing the REST
//     request" in 4D's status table) with the documented body: a stale or
//     missing __STAMP gets {"__STATUS":{"status":2,"statusText":"Stamp has
//     changed","success":false}, <the entity as it is, with its current
//     __STAMP>, "__ERROR":[{..."errCode":1263}, {...1046}, {...1517}]}. A
//     __KEY that names no entity is 404 with errCode 1542, the documented
//     "Cannot find entity with "<key>" key in the "<Dataclass>" dataclass".
//     An unknown attribute is errCode 1500. A dataclass that does not
//     exist (or is not exposed) is 404 with errCode 1800, "datastore class
//     cannot be found": the 404 of the status table of "About REST
//     requests" (developer.4d.com/docs/REST/REST_requests).
//   - An upload ID is good until its $timeout (default 120 s) has passed,
//     and may be attached more than once within it. An ID never given or
//     expired is refused with errCode 1802 and a message that names the ID
//     (1802 is what 4D answers for another server-cached object with a
//     $timeout, an entity set, that cannot be found).
//   - $rawPict=true needs an image/* Content-Type: 4D must know the picture
//     codec. $binary=true takes any Content-Type. Both need a
//     Content-Length (411 without) no greater than MaxRequestBytes (413).
//   - A failed login is 200 {"result":false}, as the $directory page shows.
//     A request without a valid session is 401 with an __ERROR body.
//   - errCode is 0 in the errors whose code 4D does not document.
//   - The fake updates one entity per $method=update (an array body, which
//     4D accepts to update several, is 400 here) and never creates one.
//
// 4D does not keep a file's name with a BLOB or picture. The fake records
// the filename of the upload's Content-Disposition, which 4D ignores, so
// that Documents can name what arrived.
//
// The fake keeps only the SHA-256 and size of the bytes it receives, hashing
// them as they stream in. Faults are injected with Inject, Fail and FailNext
// or over the control API under /_fake/ (see control.go).
package fourd

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ferry-relay/ferry/internal/fakes/contract"
)

// Defaults of Options.
const (
	// CookieNameDefault is the session cookie's name: 4D v20 and later
	// call it 4DSID_<application name>, earlier versions WASID4D.
	CookieNameDefault = "4DSID_Ferry"
	// UploadTimeoutDefault is how long an upload ID is good when the
	// request has no $timeout, 4D's documented default.
	UploadTimeoutDefault = 120 * time.Second
	// MaxRequestBytesDefault is 4D's default "Maximum request size",
	// 2,000,000 KB.
	MaxRequestBytesDefault = 2_000_000 * 1024
	// DataclassDefault is the dataclass New(Options{}) holds.
	DataclassDefault = "Invoices"
)

// Protocol steps, as Fail, Inject and Request.Step name them.
const (
	StepLogin  = "login"
	StepRead   = "read"
	StepUpload = "upload"
	StepUpdate = "update"
)

// AttributeKind is the type of an attribute, as far as the fake cares.
type AttributeKind string

// Attribute kinds.
const (
	// Blob holds the bytes of an upload.
	Blob AttributeKind = "blob"
	// Picture holds the bytes of an upload, shown by 4D as an image.
	Picture AttributeKind = "picture"
	// Text holds a string.
	Text AttributeKind = "text"
)

// Dataclass describes a dataclass the fake holds.
type Dataclass struct {
	// Attributes are its storage attributes by name (the primary key "ID"
	// is implicit).
	Attributes map[string]AttributeKind
	// Keys are the primary keys of its entities, each at __STAMP 1.
	Keys []string
}

// Options configure a fake 4D server. The zero value is an open REST
// server holding DefaultDataclasses.
type Options struct {
	// Username and Password are the only credentials the login accepts.
	// With Username empty REST is open: no session is needed.
	Username, Password string
	// CookieName names the session cookie (default CookieNameDefault).
	CookieName string
	// UploadTimeout is an upload ID's life when the request has no
	// $timeout (default UploadTimeoutDefault).
	UploadTimeout time.Duration
	// MaxRequestBytes is the largest upload accepted (default
	// MaxRequestBytesDefault).
	MaxRequestBytes int64
	// Dataclasses are the dataclasses and entities the fake starts with
	// (default DefaultDataclasses()).
	Dataclasses map[string]Dataclass
	// Now is the fake's clock, for upload expiry (default time.Now).
	Now func() time.Time
}

// DefaultDataclasses is dataclass Invoices with attributes pdf (BLOB), scan
// (picture) and fileName (text), and entities with keys "1" to "100".
func DefaultDataclasses() map[string]Dataclass {
	keys := make([]string, 100)
	for i := range keys {
		keys[i] = strconv.Itoa(i + 1)
	}
	return map[string]Dataclass{DataclassDefault: {
		Attributes: map[string]AttributeKind{"pdf": Blob, "scan": Picture, "fileName": Text},
		Keys:       keys,
	}}
}

// Request is what the fake recorded of one request it received, without
// secrets: no password, no cookie value.
type Request struct {
	// Step is the protocol step, or "" for a path the fake does not know.
	Step string `json:"step"`
	// Method and Path are the request's; Path includes the query.
	Method string `json:"method"`
	Path   string `json:"path"`
	// ContentType and ContentLength are the request's headers.
	ContentType   string `json:"contentType,omitempty"`
	ContentLength int64  `json:"contentLength"`
	// Username is the username-4D header of a login.
	Username string `json:"username,omitempty"`
	// Session tells whether the request carried a valid session cookie.
	Session bool `json:"session"`
	// BodySHA256 and BodySize describe the body as received.
	BodySHA256 string `json:"bodySha256,omitempty"`
	BodySize   int64  `json:"bodySize"`
	// JSON is the body of a $method=update, which holds no secret.
	JSON string `json:"json,omitempty"`
	// Status is the answer's status, 0 when the connection was dropped.
	Status int `json:"status"`
	// Fault is the mode of the injected fault that hit the request.
	Fault Mode `json:"fault,omitempty"`

	recorded bool
}

// upload is a file received by $upload, until its timeout.
type upload struct {
	id, name, contentType, sha256 string
	size                          int64
	picture                       bool
	expires                       time.Time
}

// Server is a fake 4D server. It is safe for concurrent use.
type Server struct {
	opts Options

	mu       sync.Mutex
	classes  map[string]Dataclass
	entities map[string]map[string]*entity // dataclass, key
	uploads  map[string]*upload
	sessions map[string]bool
	faults   map[string][]*Fault
	requests []*Request
	// binds counts the files bound to an attribute by an update: a file
	// bound again counts again.
	binds       int
	refuseUntil time.Time
}

var _ contract.Versioned = (*Server)(nil)

// New returns a fake 4D server configured by opts.
func New(opts Options) *Server {
	if opts.CookieName == "" {
		opts.CookieName = CookieNameDefault
	}
	if opts.UploadTimeout <= 0 {
		opts.UploadTimeout = UploadTimeoutDefault
	}
	if opts.MaxRequestBytes <= 0 {
		opts.MaxRequestBytes = MaxRequestBytesDefault
	}
	if opts.Dataclasses == nil {
		opts.Dataclasses = DefaultDataclasses()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{opts: opts}
	s.Reset()
	return s
}

// Reset puts the fake back as New left it: the configured entities at
// __STAMP 1, no uploads, sessions, faults or recorded requests.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.classes = map[string]Dataclass{}
	s.entities = map[string]map[string]*entity{}
	for name, dc := range s.opts.Dataclasses {
		s.classes[name] = dc
		s.entities[name] = map[string]*entity{}
		for _, k := range dc.Keys {
			s.entities[name][k] = &entity{stamp: 1, files: map[string]*upload{}, texts: map[string]string{}, history: map[string][]string{}}
		}
	}
	s.uploads = map[string]*upload{}
	s.sessions = map[string]bool{}
	s.faults = map[string][]*Fault{}
	s.requests = nil
	s.binds = 0
	s.refuseUntil = time.Time{}
}

// Steps names the protocol's steps in the order ferry's connector takes
// them when the job gives no __STAMP; login only when a login is needed.
func (s *Server) Steps() []string {
	if s.opts.Username == "" {
		return []string{StepRead, StepUpload, StepUpdate}
	}
	return []string{StepLogin, StepRead, StepUpload, StepUpdate}
}

// Uploads returns how many upload IDs the fake holds, expired or not.
func (s *Server) Uploads() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.uploads)
}

// ExpireUploads makes every upload ID given so far expired, as if its
// $timeout had passed.
func (s *Server) ExpireUploads() {
	s.mu.Lock()
	defer s.mu.Unlock()
	past := s.opts.Now().Add(-time.Second)
	for _, u := range s.uploads {
		u.expires = past
	}
}

// ExpireCredentials ends every session, as 4D does when a session's
// inactivity timeout passes: the next request with its cookie is 401.
func (s *Server) ExpireCredentials() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sessions = map[string]bool{}
}

// Requests returns what the fake recorded of each request, oldest first.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.requests))
	for i, r := range s.requests {
		out[i] = *r
	}
	return out
}

// ServeHTTP answers 4D REST requests under /rest/ and the control API
// under /_fake/.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/_fake/") {
		s.control(w, r)
		return
	}
	rec := &Request{
		Method: r.Method, Path: r.URL.RequestURI(),
		ContentType: r.Header.Get("Content-Type"), ContentLength: r.ContentLength,
	}
	defer s.record(rec) // in case no answer recorded it
	rt, ok := route(r)
	if !ok {
		s.replyError(w, rec, http.StatusNotFound, 0, "The resource "+strconv.Quote(r.URL.Path)+" cannot be found")
		return
	}
	rec.Step = rt.step
	allow := http.MethodPost
	if rt.step == StepRead {
		allow = http.MethodGet
	}
	if r.Method != allow {
		w.Header().Set("Allow", allow)
		s.replyError(w, rec, http.StatusMethodNotAllowed, 0, r.Method+" is not allowed here, only "+allow)
		return
	}
	rec.Session = s.validSession(r)
	fault := s.takeFault(rt.step)
	if s.faultBefore(w, r, rec, fault) {
		return
	}
	if rt.step != StepLogin && s.opts.Username != "" && !rec.Session {
		s.replyError(w, rec, http.StatusUnauthorized, 0, "No session: log in with $directory/login first, or the session has expired")
		return
	}
	if fault != nil && fault.Mode == ModeDropAfter {
		// Do the work, then lose the answer.
		s.serveStep(discard{h: http.Header{}}, r, rec, rt, fault)
		s.drop(w, rec, fault.Mode)
		return
	}
	s.serveStep(w, r, rec, rt, fault)
}

func (s *Server) serveStep(w http.ResponseWriter, r *http.Request, rec *Request, rt routed, fault *Fault) {
	switch rt.step {
	case StepLogin:
		s.login(w, r, rec)
	case StepRead:
		s.read(w, rec, rt.dataclass, rt.key)
	case StepUpload:
		s.upload(w, r, rec)
	case StepUpdate:
		s.update(w, r, rec, rt.dataclass, fault)
	}
}

// routed is a request's step and the dataclass and key in its path.
type routed struct{ step, dataclass, key string }

// route tells the step of a /rest/ request.
func route(r *http.Request) (routed, bool) {
	rest, ok := strings.CutPrefix(r.URL.Path, "/rest/")
	if !ok {
		return routed{}, false
	}
	rest = strings.TrimSuffix(rest, "/")
	switch {
	case rest == "$directory/login":
		return routed{step: StepLogin}, true
	case rest == "$upload":
		return routed{step: StepUpload}, true
	case strings.HasSuffix(rest, ")") && strings.Contains(rest, "("):
		i := strings.IndexByte(rest, '(')
		key := rest[i+1 : len(rest)-1]
		// Accept a quoted key as well: {dataClass}("ABC").
		if len(key) >= 2 && key[0] == '"' && key[len(key)-1] == '"' {
			key = key[1 : len(key)-1]
		}
		return routed{step: StepRead, dataclass: rest[:i], key: key}, !strings.Contains(rest[:i], "/")
	case rest != "" && !strings.ContainsAny(rest, "/$()"):
		// Only $method=update is known on a dataclass; update refuses
		// other $method values.
		return routed{step: StepUpdate, dataclass: rest}, true
	}
	return routed{}, false
}

// validSession tells whether r carries the cookie of a live session.
func (s *Server) validSession(r *http.Request) bool {
	c, err := r.Cookie(s.opts.CookieName)
	if err != nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions[c.Value] && !time.Now().Before(s.refuseUntil)
}

// newID returns 32 uppercase hex digits, the shape of 4D's upload IDs and
// session ids.
func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return strings.ToUpper(hex.EncodeToString(b))
}

// fourDError is one entry of 4D's __ERROR array.
type fourDError struct {
	Message            string `json:"message"`
	ComponentSignature string `json:"componentSignature"`
	ErrCode            int    `json:"errCode"`
}

// replyError answers status with a 4D error body {"__ERROR":[...]}.
func (s *Server) replyError(w http.ResponseWriter, rec *Request, status, code int, msg string) {
	s.reply(w, rec, status, errorBody(code, msg))
}

// reply records rec, then answers status with v as JSON: a client that
// has its answer finds its request in Requests.
func (s *Server) reply(w http.ResponseWriter, rec *Request, status int, v any) {
	rec.Status = status
	s.record(rec)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// record makes rec visible to Requests, once. Later changes to rec are
// made under s.mu.
func (s *Server) record(rec *Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recordLocked(rec)
}

func (s *Server) recordLocked(rec *Request) {
	if !rec.recorded {
		rec.recorded = true
		s.requests = append(s.requests, rec)
	}
}

// discard is a ResponseWriter that loses the answer, for ModeDropAfter.
type discard struct{ h http.Header }

func (d discard) Header() http.Header         { return d.h }
func (d discard) Write(b []byte) (int, error) { return len(b), nil }
func (d discard) WriteHeader(int)             {}
