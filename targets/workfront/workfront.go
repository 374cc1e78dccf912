// Package workfront is the connector of kind "workfront": it attaches each
// file as a document to a Workfront object (a project, task, issue...)
// through Workfront's REST API, version 15.0, in two steps:
//
//  1. POST /attask/api/v15.0/upload, multipart with the file in
//     uploadedFile, answers a handle;
//  2. POST /attask/api/v15.0/document with updates={name, handle,
//     docObjCode, objID, extRefID, currentVersion} creates the document
//     and answers its ID, the job's remote id.
//
// It authenticates with an API key (the apiKey parameter) or with a
// username and password: it logs in, sends the session in the SessionID
// header, shares it between deliveries, and when Workfront refuses the
// session (it expired) logs in again once and repeats the request.
//
// The handle is saved in the checkpoint as soon as the upload succeeds, so
// a failed creation is retried with the same handle and the file is not
// sent twice. Before the creation is sent, the checkpoint records it
// (create_sent): the creation may land while its answer is lost. A later
// attempt that finds the mark first searches for a document whose extRefID
// is the job id (GET document/search), returns it if there is one, and
// creates only on a definite empty answer; a search that fails in any way
// (5xx, 404, refusal, timeout, an answer that is not JSON) ends the attempt
// with a retryable error and creates nothing. A handle Workfront then
// refuses (spent or expired) is replaced by a new upload. Either way
// Workfront ends up with one document per job.
//
// A refused session is forgotten at once (no request sends it again) and
// renewed once per attempt; a refused API key, login or fresh session is
// reported as refused credentials (targets.CredentialsRefused), which
// pauses the target instead of failing its jobs. A Security or permission
// error about one object stays a permanent failure of that job.
//
// Workfront allows a customer ten concurrent API requests. A Client never
// has more than max_concurrent_requests requests in flight, and reports the
// same number and its host through targets.SharedLimiter, so that the
// worker caps every target entry on that instance, across all processes,
// at that many deliveries (one request each at a time).
package workfront

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/ferry-relay/ferry/targets"
)

// APIVersion is the version of Workfront's REST API the connector speaks.
const APIVersion = "v15.0"

// MaxConcurrentRequestsDefault is Workfront's limit of ten concurrent API
// requests per customer.
const MaxConcurrentRequestsDefault = 10

// Parameters of a job (param.<name> at upload).
const (
	// ParamObjID is the ID of the object the document is attached to.
	ParamObjID = "objID"
	// ParamDocObjCode is that object's code: PROJ, TASK, OPTASK, PORT,
	// PRGM, USER... Letter case does not matter.
	ParamDocObjCode = "docObjCode"
	// ParamName is the document's name, by default the filename.
	ParamName = "name"
)

// Checkpoint keys.
const (
	// CheckpointHandle holds the upload's handle.
	CheckpointHandle = "handle"
	// CheckpointCreateSent is set before the document creation is sent:
	// a later attempt that finds it searches for the document by extRefID
	// before creating one.
	CheckpointCreateSent = "create_sent"
)

// Steps of the protocol, as errors name them.
const (
	stepLogin    = "login"
	stepUpload   = "upload"
	stepDocument = "document"
	stepSearch   = "document search"
)

// objCodeRE is the shape of a Workfront object code.
var objCodeRE = regexp.MustCompile(`^[A-Za-z]{2,12}$`)

// Settings are the kind's own settings in the targets file.
type Settings struct {
	// BaseURL is the instance, such as https://acme.my.workfront.com,
	// without /attask/api.
	BaseURL string `yaml:"base_url"`
	// APIKey authenticates every request. Set it, or Username and
	// Password.
	APIKey string `yaml:"api_key"`
	// Username and Password open a session.
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// MaxConcurrentRequests is the most requests in flight to Workfront,
	// per Client and across all workers (default 10).
	MaxConcurrentRequests int `yaml:"max_concurrent_requests"`
}

// Client delivers files to one Workfront instance. It is safe for
// concurrent use; deliveries share its session and its request limit.
type Client struct {
	s    Settings
	http *http.Client
	api  string // BaseURL + /attask/api/v15.0

	sem       chan struct{} // one token per request in flight
	loginSlot chan struct{} // held while logging in

	mu        sync.Mutex
	sessionID string
	// loginRefused is the last refused login, answered for a moment to
	// the logins queued behind it.
	loginRefused   error
	loginRefusedAt time.Time
}

var (
	_ targets.Deliverer        = (*Client)(nil)
	_ targets.ParamChecker     = (*Client)(nil)
	_ targets.SharedLimiter    = (*Client)(nil)
	_ targets.CredentialProber = (*Client)(nil)
	_ targets.Versioner        = (*Client)(nil)
)

// New builds the connector from its target configuration.
func New(cfg targets.Config) (targets.Deliverer, error) {
	var s Settings
	if err := cfg.Settings(&s); err != nil {
		return nil, err
	}
	// The kind versions documents its system's own way: no versions or
	// on_conflict setting.
	if _, err := cfg.VersionsFor(); err != nil {
		return nil, err
	}
	return NewClient(s, targets.HTTPClient(cfg))
}

// NewClient builds the connector from settings and an HTTP client; nil
// means a client of its own, keeping as many idle connections as requests
// may be in flight. The HTTP client should have no overall timeout: the
// delivery's context bounds each attempt, uploads included.
func NewClient(s Settings, hc *http.Client) (*Client, error) {
	s.MaxConcurrentRequests = cmp.Or(s.MaxConcurrentRequests, MaxConcurrentRequestsDefault)
	if err := s.validate(); err != nil {
		return nil, err
	}
	if hc == nil {
		hc = targets.HTTPClient(targets.Config{Concurrency: s.MaxConcurrentRequests})
	}
	return &Client{
		s:         s,
		http:      hc,
		api:       strings.TrimRight(s.BaseURL, "/") + "/attask/api/" + APIVersion,
		sem:       make(chan struct{}, s.MaxConcurrentRequests),
		loginSlot: make(chan struct{}, 1),
	}, nil
}

func (s Settings) validate() error {
	u, err := url.Parse(s.BaseURL)
	switch {
	case s.BaseURL == "":
		return errors.New("workfront: base_url is required")
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return fmt.Errorf("workfront: base_url %q must be an http:// or https:// URL", s.BaseURL)
	case strings.Contains(u.Path, "/attask"):
		return fmt.Errorf("workfront: base_url %q must be the instance URL, without the /attask/api path", s.BaseURL)
	case s.APIKey != "" && (s.Username != "" || s.Password != ""):
		return errors.New("workfront: set either api_key or username and password, not both")
	case s.APIKey == "" && (s.Username == "" || s.Password == ""):
		return errors.New("workfront: api_key or username and password are required")
	case s.MaxConcurrentRequests < 1:
		return errors.New("workfront: max_concurrent_requests must be at least 1")
	}
	return nil
}

// SharedLimit is the instance's cap of concurrent requests, shared by
// every target entry that points at the same host, across all workers:
// max_concurrent_requests. A delivery makes one request at a time, so the
// worker's cap on deliveries is a cap on requests.
func (c *Client) SharedLimit() (string, int) {
	u, _ := url.Parse(c.s.BaseURL) // validated in NewClient
	return "workfront-" + strings.ToLower(u.Host), c.s.MaxConcurrentRequests
}

// ProbeCredentials checks the credentials with the cheapest request: a
// login, or with an API key a search that matches nothing.
func (c *Client) ProbeCredentials(ctx context.Context) error {
	if c.s.APIKey == "" {
		id, err := c.login(ctx)
		if err != nil {
			return err
		}
		c.mu.Lock()
		c.sessionID, c.loginRefused = id, nil
		c.mu.Unlock()
		return nil
	}
	_, err := c.find(ctx, &attempt{renewed: true}, docSpec{extRefID: "ferry-credential-probe", objID: "0", docObjCode: "PROJ"})
	return err
}

// CheckParams requires param.objID and param.docObjCode.
func (c *Client) CheckParams(params map[string]string) error {
	var errs []error
	if strings.TrimSpace(params[ParamObjID]) == "" {
		errs = append(errs, errors.New("missing param."+ParamObjID+" (the ID of the Workfront object to attach to)"))
	}
	switch code := params[ParamDocObjCode]; {
	case code == "":
		errs = append(errs, errors.New("missing param."+ParamDocObjCode+" (PROJ, TASK, OPTASK...)"))
	case !objCodeRE.MatchString(code):
		errs = append(errs, fmt.Errorf("param.%s %q is not a Workfront object code such as PROJ, TASK or OPTASK", ParamDocObjCode, code))
	}
	return errors.Join(errs...)
}

// docSpec is the document a delivery creates.
type docSpec struct {
	name, fileName, objID, docObjCode, extRefID string
	// version is the version's label: v1.0 for a job without a
	// document, v<n>.0 for version n of one.
	version string
}

func newDocSpec(d *targets.Delivery) docSpec {
	spec := docSpec{
		name:       cmp.Or(d.Params[ParamName], d.Filename),
		fileName:   d.Filename,
		objID:      strings.TrimSpace(d.Params[ParamObjID]),
		docObjCode: strings.ToUpper(d.Params[ParamDocObjCode]),
		extRefID:   d.JobID,
		version:    "v1.0",
	}
	if d.Document != nil {
		spec.extRefID = ExtRefIDPrefix + d.Document.ID
		spec.version = fmt.Sprintf("v%d.0", d.Document.Version)
	}
	return spec
}

// Deliver uploads the file, unless an earlier attempt did, and creates the
// document, unless an earlier attempt did: before repeating a creation
// that was sent, it asks Workfront whether it landed. A version of a
// document is delivered as a version of its Workfront document
// (document.go).
func (c *Client) Deliver(ctx context.Context, d *targets.Delivery) (targets.Result, error) {
	if err := ctx.Err(); err != nil {
		return targets.Result{}, err
	}
	// A delete names its document by the remote id (or the extRefID),
	// not by the object it was attached to: a delete job has no params.
	if d.Document == nil || !d.Document.Delete {
		if err := c.CheckParams(d.Params); err != nil {
			return targets.Result{}, targets.Permanent(err)
		}
	}
	at := &attempt{}
	if d.Document != nil {
		return c.deliverDocument(ctx, at, d)
	}
	id, err := c.deliverFile(ctx, at, d, newDocSpec(d), true)
	if err != nil {
		return targets.Result{}, err
	}
	return targets.Result{RemoteID: id, StatusCode: http.StatusOK}, nil
}

// deliverFile creates the document from the file: it uploads the file
// unless an earlier attempt did, and, when ask, first asks whether an
// earlier attempt's creation landed.
func (c *Client) deliverFile(ctx context.Context, at *attempt, d *targets.Delivery, doc docSpec, ask bool) (string, error) {
	handle := d.Checkpoint[CheckpointHandle]
	fromEarlier := handle != ""
	if ask && (d.Checkpoint[CheckpointCreateSent] != "" || fromEarlier) {
		// An earlier attempt sent the creation (or may have: a
		// checkpoint from before create_sent was recorded): ask.
		if id, err := c.landed(ctx, at, doc); err != nil || id != "" {
			return id, err
		}
	}
	if handle == "" {
		var err error
		if handle, err = c.upload(ctx, at, d); err != nil {
			return "", err
		}
	}
	id, err := c.createOnce(ctx, at, d, doc, handle)
	if err != nil && refused(err) && fromEarlier {
		// The handle is spent or expired, and the search said no
		// document holds it: upload again.
		if handle, err = c.upload(ctx, at, d); err == nil {
			id, err = c.createOnce(ctx, at, d, doc, handle)
		}
	}
	return id, err
}

// landed asks Workfront for the document an earlier attempt's creation
// made: its ID, or "" on a definite empty answer. A search that failed in
// any way (a 5xx, a 404, a refusal, a timeout, an answer that is not JSON)
// is not "not found": it is a retryable error, and nothing is created.
func (c *Client) landed(ctx context.Context, at *attempt, doc docSpec) (string, error) {
	id, err := c.find(ctx, at, doc)
	if err == nil {
		return id, nil
	}
	if targets.IsCredentials(err) {
		return "", err
	}
	te := targets.Classify(err)
	return "", &targets.Error{
		Err:        fmt.Errorf("cannot tell whether an earlier attempt created the document, so not creating it: %w", err),
		RetryAfter: te.RetryAfter, StatusCode: te.StatusCode,
	}
}

// createOnce records in the checkpoint that the creation is being sent,
// then sends it: a later attempt that finds the mark asks before creating.
func (c *Client) createOnce(ctx context.Context, at *attempt, d *targets.Delivery, doc docSpec, handle string) (string, error) {
	if d.Checkpoint[CheckpointCreateSent] == "" {
		if err := d.Save(ctx, targets.Checkpoint{CheckpointCreateSent: "1"}); err != nil {
			return "", fmt.Errorf("save checkpoint: %w", err)
		}
	}
	return c.create(ctx, at, doc, handle)
}

// upload sends the file and saves its handle in the checkpoint.
func (c *Client) upload(ctx context.Context, at *attempt, d *targets.Delivery) (string, error) {
	var out struct {
		Handle string `json:"handle"`
	}
	err := c.call(ctx, at, stepUpload, func(ctx context.Context) (*http.Request, error) {
		f, err := d.Open(ctx)
		if err != nil {
			return nil, fmt.Errorf("open stored file: %w", err)
		}
		body, length, ctype, err := targets.MultipartBody(nil, "uploadedFile", d.Filename, d.ContentType, f, d.Size)
		if err != nil {
			f.Close()
			return nil, err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.api+"/upload", readCloser{body, f})
		if err != nil {
			f.Close()
			return nil, targets.Permanent(err)
		}
		req.ContentLength = length
		req.Header.Set("Content-Type", ctype)
		return req, nil
	}, &out)
	if err != nil {
		return "", err
	}
	if out.Handle == "" {
		return "", errors.New("upload: Workfront answered no handle")
	}
	if err := d.Save(ctx, targets.Checkpoint{CheckpointHandle: out.Handle}); err != nil {
		return "", fmt.Errorf("save upload handle: %w", err)
	}
	return out.Handle, nil
}

// readCloser closes the stored file under a multipart body.
type readCloser struct {
	io.Reader
	io.Closer
}

// updates is the document as sent in updates={json}.
type updates struct {
	Name           string  `json:"name"`
	Handle         string  `json:"handle"`
	DocObjCode     string  `json:"docObjCode"`
	ObjID          string  `json:"objID"`
	ExtRefID       string  `json:"extRefID,omitempty"`
	CurrentVersion version `json:"currentVersion"`
}

type version struct {
	Version  string `json:"version"`
	FileName string `json:"fileName"`
	Ext      string `json:"ext,omitempty"`
}

// create makes the document from the handle and returns its ID.
//
// The fields go in updates={json} rather than as separate parameters: it
// is the form Workfront documents for creating a document from a handle,
// and the only one that sets the first version's file name and extension,
// which Workfront's previews and downloads use; the name travels
// JSON-escaped whatever its characters. updates is sent in a form body,
// as Workfront's own API client sends parameters of a POST, rather than in
// the query string: a long UTF-8 name then cannot reach the 8892-byte URI
// limit of Workfront's CDN.
func (c *Client) create(ctx context.Context, at *attempt, doc docSpec, handle string) (string, error) {
	u, err := json.Marshal(updates{
		Name: doc.name, Handle: handle, DocObjCode: doc.docObjCode, ObjID: doc.objID,
		ExtRefID: doc.extRefID,
		CurrentVersion: version{
			Version: doc.version, FileName: doc.fileName,
			Ext: strings.TrimPrefix(path.Ext(doc.fileName), "."),
		},
	})
	if err != nil {
		return "", targets.Permanent(fmt.Errorf("document: %w", err))
	}
	form := url.Values{"updates": {string(u)}}.Encode()
	var out struct {
		ID string `json:"ID"`
	}
	err = c.call(ctx, at, stepDocument, func(ctx context.Context) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.api+"/document", strings.NewReader(form))
		if err != nil {
			return nil, targets.Permanent(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return req, nil
	}, &out)
	if err != nil {
		return "", err
	}
	if out.ID == "" {
		return "", errors.New("document: Workfront answered no ID")
	}
	return out.ID, nil
}

// find returns the ID of the document of this job on its object, or "".
func (c *Client) find(ctx context.Context, at *attempt, doc docSpec) (string, error) {
	q := url.Values{"extRefID": {doc.extRefID}, "fields": {"ID,name"}}
	// A delete knows no object (its job has no params): the extRefID,
	// ferry's own per document, is enough.
	if doc.objID != "" || doc.docObjCode != "" {
		q.Set("objID", doc.objID)
		q.Set("docObjCode", doc.docObjCode)
	}
	var out []struct {
		ID string `json:"ID"`
	}
	err := c.call(ctx, at, stepSearch, func(ctx context.Context) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.api+"/document/search?"+q.Encode(), nil)
		if err != nil {
			return nil, targets.Permanent(err)
		}
		return req, nil
	}, &out)
	if err != nil || len(out) == 0 {
		return "", err
	}
	return out[0].ID, nil
}
