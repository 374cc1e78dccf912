// Package workfronthook is the connector of kind "workfront-webhook": it
// stores files with a document provider that implements Adobe Workfront's
// Document Webhooks API, uploading them the way Workfront itself does.
//
// An upload takes two steps:
//
//	POST {base_url}/uploadInit?parentId=&filename=[&documentId=&documentVersionId=]
//	     creates the document and answers its metadata, whose "id" is the
//	     provider's id for it (the job's remote id);
//	PUT  {base_url}/upload?id=<id>
//	     carries the raw bytes and answers {"result":"success"} or
//	     {"result":"fail"}.
//
// The id is saved in the checkpoint before the bytes are sent, so an attempt
// after a failed PUT sends only the PUT again, to the same id, and never
// leaves a second empty document at the provider. If the provider no longer
// knows a saved id (404: it expired or lost the unfinished document), the
// connector forgets it and starts again from uploadInit.
//
// One case cannot be made safe: when uploadInit's answer is lost (the
// connection drops after the provider created the document), the retry
// creates another document and the first stays empty at the provider. The
// spec has no idempotency key to prevent it and no call to look the first
// one up. The connector records that uploadInit was sent (init_sent) before
// sending it; a retry that finds the mark without an id is marked
// uncertain (Delivery.MarkUncertain), so the worker counts it and an
// operator can find it. A lost answer of the PUT is safe: it is repeated to
// the same id, which replaces the content.
//
// {"result":"fail"} is retryable from uploadInit as from upload. 401 and
// 403 (the spec's answer to a missing or invalid token) are refused
// credentials: the target pauses; a 404 for an unknown folder is a
// permanent failure of that job.
//
// Authentication is the spec's ApiKey type: the provider's key in an
// "apiKey" header (Workfront's name for it), or in a query parameter for
// providers that want it there, and optionally the user's name in a
// "username" header, as Workfront sends it. The spec's other type, OAuth2,
// authorizes a Workfront user interactively and has no place in a relay.
package workfronthook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/ferry-relay/ferry/targets"
)

// Names used by the connector.
const (
	// APIKeyHeaderDefault is the header carrying the API key unless
	// Settings say otherwise; Workfront sends it under this name.
	APIKeyHeaderDefault = "apiKey"
	// CheckpointKey holds the provider's document id once uploadInit has
	// answered.
	CheckpointKey = "provider_document_id"
	// CheckpointInitSent is set before uploadInit is sent and cleared
	// when it answered definitely.
	CheckpointInitSent = "init_sent"
	// ParamParentID (required) is the provider's id of the folder that
	// receives the file.
	ParamParentID = "parentId"
	// ParamDocumentID and ParamDocumentVersionID are Workfront's ids of the
	// document and its version, passed through to uploadInit when given.
	ParamDocumentID        = "documentId"
	ParamDocumentVersionID = "documentVersionId"
)

// reserved are query parameters the protocol itself sets.
var reserved = []string{ParamParentID, "filename", ParamDocumentID, ParamDocumentVersionID, "id"}

// Settings are the kind's own settings in the targets file.
type Settings struct {
	// BaseURL is the provider's base API URL, the "Base API URL" of a
	// Workfront custom integration: endpoint names are appended to it.
	BaseURL string `yaml:"base_url"`
	// APIKey is the key the provider issued (required).
	APIKey string `yaml:"api_key"`
	// APIKeyHeader is the header that carries the key (default
	// APIKeyHeaderDefault).
	APIKeyHeader string `yaml:"api_key_header"`
	// APIKeyQuery, when set, names a query parameter that carries the key
	// instead of a header. Set it or APIKeyHeader, not both.
	APIKeyQuery string `yaml:"api_key_query"`
	// Username, when set, is sent in a "username" header with every
	// request, as Workfront does, for providers that apply per-user
	// permissions.
	Username string `yaml:"username"`
	// RequestParams are added to the query of every request, like the
	// "Request parameters" of a Workfront custom integration.
	RequestParams map[string]string `yaml:"request_params"`
}

// Client uploads files to one document webhook provider.
type Client struct {
	s    Settings
	base *url.URL
	http *http.Client
}

var (
	_ targets.Deliverer    = (*Client)(nil)
	_ targets.ParamChecker = (*Client)(nil)
	_ targets.Versioner    = (*Client)(nil)
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

// NewClient builds the connector from settings and an HTTP client. The
// client is copied with redirects turned off: following one would send the
// API key wherever it points and cannot replay a streamed body, so a
// provider that redirects (a base_url on http:// that moved to https://, say)
// is reported as a permanent error naming the 3xx status.
func NewClient(s Settings, hc *http.Client) (*Client, error) {
	base, err := s.validate()
	if err != nil {
		return nil, err
	}
	if s.APIKeyQuery == "" && s.APIKeyHeader == "" {
		s.APIKeyHeader = APIKeyHeaderDefault
	}
	if hc == nil {
		hc = targets.HTTPClient(targets.Config{})
	}
	noRedirect := *hc
	noRedirect.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &Client{s: s, base: base, http: &noRedirect}, nil
}

// validate checks s and returns the parsed base URL. Its errors never hold
// the key.
func (s Settings) validate() (*url.URL, error) {
	base, err := url.Parse(s.BaseURL)
	switch {
	case s.BaseURL == "":
		return nil, errors.New("workfront-webhook: base_url is required")
	case err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "":
		return nil, fmt.Errorf("workfront-webhook: base_url %q must be an http:// or https:// URL", s.BaseURL)
	case base.RawQuery != "" || base.Fragment != "":
		return nil, errors.New("workfront-webhook: base_url must have no query or fragment; use request_params")
	case s.APIKey == "":
		return nil, errors.New("workfront-webhook: api_key is required")
	case strings.ContainsFunc(s.APIKey, isCTL):
		return nil, errors.New("workfront-webhook: api_key holds control characters")
	case s.APIKeyHeader != "" && s.APIKeyQuery != "":
		return nil, errors.New("workfront-webhook: set api_key_header or api_key_query, not both")
	case s.APIKeyHeader != "" && !isToken(s.APIKeyHeader):
		return nil, fmt.Errorf("workfront-webhook: api_key_header %q is not a valid header name", s.APIKeyHeader)
	case strings.ContainsFunc(s.Username, isCTL):
		return nil, errors.New("workfront-webhook: username holds control characters")
	}
	if slices.Contains(reserved, s.APIKeyQuery) {
		return nil, fmt.Errorf("workfront-webhook: api_key_query %q is a parameter of the protocol", s.APIKeyQuery)
	}
	for k := range s.RequestParams {
		if slices.Contains(reserved, k) || (s.APIKeyQuery != "" && k == s.APIKeyQuery) {
			return nil, fmt.Errorf("workfront-webhook: request_params may not set %q, the connector sets it", k)
		}
	}
	return base, nil
}

// CheckParams reports a missing parentId, without which uploadInit is
// refused.
func (c *Client) CheckParams(params map[string]string) error {
	if params[ParamParentID] == "" {
		return fmt.Errorf("missing param.%s: the provider's id of the folder to upload into", ParamParentID)
	}
	return nil
}

// Deliver makes one attempt: uploadInit unless the checkpoint holds the id
// of an earlier attempt, then the upload of the bytes to that id.
func (c *Client) Deliver(ctx context.Context, d *targets.Delivery) (targets.Result, error) {
	if err := c.CheckParams(d.Params); err != nil {
		return targets.Result{}, targets.Permanent(err)
	}
	if d.Document != nil && d.Document.Delete {
		return targets.Result{}, targets.Permanent(errors.New("workfront-webhook: the Document Webhooks upload API has no delete: a document cannot be deleted"))
	}
	for {
		id, fresh := d.Checkpoint[CheckpointKey], false
		if id == "" {
			if d.Checkpoint[CheckpointInitSent] != "" {
				d.MarkUncertain(uncertainInit(d))
			} else if err := d.Save(ctx, targets.Checkpoint{CheckpointInitSent: "1"}); err != nil {
				return targets.Result{}, fmt.Errorf("save checkpoint: %w", err)
			}
			var err error
			if id, err = c.uploadInit(ctx, d); err != nil {
				if definite(err) {
					_ = d.Save(ctx, targets.Checkpoint{CheckpointInitSent: ""})
				}
				return targets.Result{}, err
			}
			if err := d.Save(ctx, targets.Checkpoint{CheckpointKey: id, CheckpointInitSent: ""}); err != nil {
				return targets.Result{}, fmt.Errorf("save checkpoint after uploadInit: %w", err)
			}
			fresh = true
		}
		res, err := c.upload(ctx, d, id)
		if !errors.Is(err, errUnknownID) {
			return withRemote(res, d, err), err
		}
		// The provider has forgotten the document: forget its id too, so
		// that the next upload starts from uploadInit. An id saved by an
		// earlier attempt is replaced at once; an id that uploadInit has
		// just given and that is already unknown means the provider is
		// not consistent, so the attempt fails (retryable) instead of
		// creating documents in a loop.
		if serr := d.Save(ctx, targets.Checkpoint{CheckpointKey: ""}); serr != nil {
			return res, fmt.Errorf("clear checkpoint after %w: %w", err, serr)
		}
		if fresh {
			return res, err
		}
	}
}

// definite reports whether a failed uploadInit surely created nothing: the
// provider answered a refusal (a 4xx, or {"result":"fail"}). A lost
// answer, a timeout or a 5xx (which a provider may write after the work)
// leave the question open.
func definite(err error) bool {
	te := targets.Classify(err)
	return te.StatusCode >= 400 && te.StatusCode < 500 || errors.Is(err, errResultFail)
}

// errResultFail marks {"result":"fail"}.
var errResultFail = errors.New(`the provider answered {"result":"fail"}`)

// errUnknownID marks an upload refused because the provider does not know
// the document id.
var errUnknownID = errors.New("document id unknown to the provider")

// uploadInit creates the document and returns the provider's id for it.
func (c *Client) uploadInit(ctx context.Context, d *targets.Delivery) (string, error) {
	q := url.Values{}
	q.Set(ParamParentID, d.Params[ParamParentID])
	q.Set("filename", d.Filename)
	for p, v := range workfrontIDs(d) {
		if v != "" {
			q.Set(p, v)
		}
	}
	req, err := c.newRequest(ctx, http.MethodPost, "uploadInit", q, http.NoBody)
	if err != nil {
		return "", err
	}
	resp, err := c.do(ctx, "uploadInit", req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return "", refusal("uploadInit", resp)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", targets.TransportError(ctx, "uploadInit: read response", err)
	}
	var result struct {
		Result  string `json:"result"`
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &result) == nil && strings.EqualFold(result.Result, "fail") {
		// As from upload: the provider could not do it this time.
		return "", &targets.Error{Err: fmt.Errorf("uploadInit: %w %s", errResultFail, result.Message), StatusCode: resp.StatusCode}
	}
	// The answer is the file's metadata; only its id matters here. A
	// provider that is not a document webhook (a wrong base_url, say)
	// will not answer better next time: permanent.
	var meta struct {
		ID json.RawMessage `json:"id"`
	}
	if err := json.Unmarshal(body, &meta); err != nil {
		return "", targets.Permanent(fmt.Errorf("uploadInit: answer is not the file's metadata: %w", err))
	}
	id := documentID(meta.ID)
	if id == "" {
		return "", targets.Permanent(errors.New(`uploadInit: the file's metadata has no "id"`))
	}
	return id, nil
}

// documentID reads an id the spec types as a string; a provider that sends
// a number gets its digits.
func documentID(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	return ""
}

// upload sends the bytes to document id.
func (c *Client) upload(ctx context.Context, d *targets.Delivery, id string) (targets.Result, error) {
	f, err := d.Open(ctx)
	if err != nil {
		return targets.Result{}, fmt.Errorf("open stored file: %w", err)
	}
	defer f.Close()

	body := io.Reader(f)
	if d.Size == 0 {
		body = http.NoBody
	}
	req, err := c.newRequest(ctx, http.MethodPut, "upload", url.Values{"id": {id}}, body)
	if err != nil {
		return targets.Result{}, err
	}
	req.ContentLength = d.Size
	ctype := d.ContentType
	if ctype == "" {
		ctype = "application/octet-stream"
	}
	req.Header.Set("Content-Type", ctype)
	resp, err := c.do(ctx, "upload", req)
	if err != nil {
		return targets.Result{}, err
	}
	defer resp.Body.Close()
	res := targets.Result{StatusCode: resp.StatusCode}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		serr := targets.StatusError("upload", resp)
		return res, &targets.Error{Err: fmt.Errorf("%w: %w", errUnknownID, serr), StatusCode: resp.StatusCode}
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		return res, refusal("upload", resp)
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return res, targets.TransportError(ctx, "upload: read response", err)
	}
	var answer struct {
		Result  string `json:"result"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal(raw, &answer); err != nil {
		return res, targets.Permanent(fmt.Errorf(`upload: answer is not {"result": ...}: %w`, err))
	}
	switch strings.ToLower(answer.Result) {
	case "success":
		res.RemoteID = id
		return res, nil
	case "fail":
		// The spec gives no reason for a "fail"; the reference provider
		// answers it when writing the bytes broke, and removes what it had
		// written, so the same PUT may well succeed later. Retryable, and
		// the id stays in the checkpoint.
		msg := `upload: the provider answered {"result":"fail"}`
		if answer.Message != "" {
			msg += ": " + answer.Message
		}
		return res, errors.New(msg)
	default:
		return res, targets.Permanent(fmt.Errorf("upload: unknown result %q", answer.Result))
	}
}

// refusal classifies a non-2xx answer: 401 and 403 refuse the API key
// (the spec names 403 for a missing or invalid token), others as
// targets.StatusError does.
func refusal(step string, resp *http.Response) error {
	err := targets.StatusError(step, resp)
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		return targets.CredentialsRefused(err)
	}
	return err
}

// newRequest builds a request to endpoint with the query q, the request
// params and the key.
func (c *Client) newRequest(ctx context.Context, method, endpoint string, q url.Values, body io.Reader) (*http.Request, error) {
	u := c.base.JoinPath(endpoint)
	for k, v := range c.s.RequestParams {
		q.Set(k, v)
	}
	if c.s.APIKeyQuery != "" {
		q.Set(c.s.APIKeyQuery, c.s.APIKey)
	}
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, targets.Permanent(fmt.Errorf("%s: build request: %w", endpoint, c.redact(err)))
	}
	if c.s.APIKeyQuery == "" {
		req.Header.Set(c.s.APIKeyHeader, c.s.APIKey)
	}
	if c.s.Username != "" {
		req.Header.Set("username", c.s.Username)
	}
	return req, nil
}

// do sends req; a failure to get an answer is retryable.
func (c *Client) do(ctx context.Context, step string, req *http.Request) (*http.Response, error) {
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, targets.TransportError(ctx, step, c.redact(err))
	}
	return resp, nil
}

// redact removes the key from the URL that net/http puts in its errors,
// when the key travels in the query.
func (c *Client) redact(err error) error {
	var ue *url.Error
	if c.s.APIKeyQuery == "" || !errors.As(err, &ue) {
		return err
	}
	u, perr := url.Parse(ue.URL)
	if perr != nil {
		ue.URL = "(url withheld)"
		return err
	}
	q := u.Query()
	if q.Has(c.s.APIKeyQuery) {
		q.Set(c.s.APIKeyQuery, "REDACTED")
		u.RawQuery = q.Encode()
	}
	ue.URL = u.String()
	return err
}

// isToken reports whether s is a valid HTTP header name (RFC 9110 token).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r > 0x7e || r <= ' ' || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r) {
			return false
		}
	}
	return true
}

func isCTL(r rune) bool { return r < ' ' || r == 0x7f }
