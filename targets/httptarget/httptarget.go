// Package httptarget is the connector of kind "http": one request that
// carries the file to a URL, as the raw body or as a multipart form.
//
// The request carries the job's identity so the receiver can de-duplicate:
// Idempotency-Key: <job id> (the IETF draft-ietf-httpapi-idempotency-key-header
// field), X-Ferry-Job-Id, X-Ferry-SHA256 and Content-Disposition with the
// filename. A receiver that honours Idempotency-Key answers a repeated
// request (its first answer was lost) without storing the file twice.
//
// With probe_url, a template holding {job_id} and {sha256}, an attempt that
// follows one whose request was sent first asks the receiver: a 2xx to GET
// (or to HEAD, when GET is 405) means the file landed, and the job
// succeeds without sending it again; a 404 means it did not; any other
// answer, or none, fails the attempt (retryable) and sends nothing.
//
// A JSON response with a string "id", or else a Location header, becomes the
// job's remote id. 401 is refused credentials (the target pauses); 403 and
// other 4xx are permanent refusals of that job.
package httptarget

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/ferry-relay/ferry/targets"
)

// Settings are the kind's own settings in the targets file.
type Settings struct {
	// URL receives the file.
	URL string `yaml:"url"`
	// Method is PUT or POST (default POST).
	Method string `yaml:"method"`
	// Body is "raw" (default: the bytes are the body) or "multipart".
	Body string `yaml:"body"`
	// Field is the multipart field holding the file (default "file").
	Field string `yaml:"field"`
	// Headers are sent with every request (an Authorization, say).
	Headers map[string]string `yaml:"headers"`
	// ProbeURL, when set, is asked whether an earlier attempt's request
	// landed before the file is sent again: {job_id} and {sha256} in it
	// are replaced by the job's.
	ProbeURL string `yaml:"probe_url"`
	// Versions is how a new version of a document is delivered (the
	// target's versions: none, put or post; default none). It is a
	// common setting of the targets file, copied here by New.
	Versions string `yaml:"-"`
	// OnConflict is fail (default) or overwrite: what versions: put does
	// when the target changed behind ferry's back. Copied by New.
	OnConflict string `yaml:"-"`
}

// CheckpointSent is set before the request is sent, when there is a
// probe_url to ask after an attempt that sent it.
const CheckpointSent = "sent"

// Client delivers files to one URL.
type Client struct {
	s    Settings
	http *http.Client
}

var (
	_ targets.Deliverer = (*Client)(nil)
	_ targets.Versioner = (*Client)(nil)
)

// New builds the connector from its target configuration.
func New(cfg targets.Config) (targets.Deliverer, error) {
	var s Settings
	if err := cfg.Settings(&s); err != nil {
		return nil, err
	}
	mode, err := cfg.VersionsFor(targets.VersionsNone, targets.VersionsPut, targets.VersionsPost)
	if err != nil {
		return nil, err
	}
	s.Versions, s.OnConflict = mode, cfg.OnConflict
	return NewClient(s, targets.HTTPClient(cfg))
}

// NewClient builds the connector from settings and an HTTP client.
func NewClient(s Settings, hc *http.Client) (*Client, error) {
	if err := s.checkVersions(); err != nil {
		return nil, err
	}
	if s.Versions == targets.VersionsPut {
		s.Method = http.MethodPut
	}
	s.Method = strings.ToUpper(s.Method)
	if s.Method == "" {
		s.Method = http.MethodPost
	}
	if s.Body == "" {
		s.Body = "raw"
	}
	if s.Field == "" {
		s.Field = "file"
	}
	switch {
	case s.URL == "":
		return nil, fmt.Errorf("http: url is required")
	case !strings.HasPrefix(s.URL, "http://") && !strings.HasPrefix(s.URL, "https://"):
		return nil, fmt.Errorf("http: url %q must start with http:// or https://", s.URL)
	case s.Method != http.MethodPost && s.Method != http.MethodPut:
		return nil, fmt.Errorf("http: method must be PUT or POST, not %q", s.Method)
	case s.Body != "raw" && s.Body != "multipart":
		return nil, fmt.Errorf("http: body must be raw or multipart, not %q", s.Body)
	case s.ProbeURL != "" && !strings.HasPrefix(s.ProbeURL, "http://") && !strings.HasPrefix(s.ProbeURL, "https://"):
		return nil, fmt.Errorf("http: probe_url %q must start with http:// or https://", s.ProbeURL)
	case s.ProbeURL != "" && !strings.Contains(s.ProbeURL, "{job_id}") && !strings.Contains(s.ProbeURL, "{sha256}"):
		return nil, fmt.Errorf("http: probe_url %q must hold {job_id} or {sha256}", s.ProbeURL)
	}
	return &Client{s: s, http: hc}, nil
}

// Deliver sends the file in one request, unless the probe says an earlier
// attempt's request landed. With versions: put it sends the document to its
// own URL instead (document.go).
func (c *Client) Deliver(ctx context.Context, d *targets.Delivery) (targets.Result, error) {
	if c.s.Versions == targets.VersionsPut {
		return c.deliverPut(ctx, d)
	}
	if d.Document != nil && d.Document.Delete {
		return targets.Result{}, targets.Permanent(fmt.Errorf("http: versions: %s cannot delete a document (versions: put can)", c.s.Versions))
	}
	if c.s.ProbeURL != "" && d.Checkpoint[CheckpointSent] != "" {
		res, landed, err := c.probe(ctx, d)
		if err != nil || landed {
			return withRemote(res, d), err
		}
	}
	// Only the probe reads the mark: without probe_url it would cost a
	// Postgres write per file for nothing (the receiver de-duplicates by
	// Idempotency-Key, or not at all).
	if c.s.ProbeURL != "" && d.Checkpoint[CheckpointSent] == "" {
		if err := d.Save(ctx, targets.Checkpoint{CheckpointSent: "1"}); err != nil {
			return targets.Result{}, fmt.Errorf("save checkpoint: %w", err)
		}
	}
	extra := http.Header{}
	if d.Document != nil && c.s.Versions == targets.VersionsPost {
		extra.Set("X-Ferry-Document", url.PathEscape(d.Document.Key))
		extra.Set("X-Ferry-Version", strconv.Itoa(d.Document.Version))
	}
	resp, err := c.send(ctx, d, c.s.Method, c.s.URL, extra)
	if err != nil {
		return targets.Result{}, err
	}
	defer resp.Body.Close()
	if err := answerError("send", resp); err != nil {
		return targets.Result{StatusCode: resp.StatusCode}, err
	}
	return withRemote(targets.Result{RemoteID: remoteID(resp), StatusCode: resp.StatusCode}, d), nil
}

// withRemote records, for a document's version, the id the receiver gave
// it (versions: post or none keep nothing else).
func withRemote(res targets.Result, d *targets.Delivery) targets.Result {
	if d.Document != nil && res.RemoteID != "" {
		res.Remote = map[string]string{"id": res.RemoteID}
	}
	return res
}

// send makes one request carrying the file to u with the job's identity
// headers, extra and the target's headers. The caller closes the answer,
// which closes the stored file too: the transport may still be reading it
// when an early answer (a 412, say) arrives.
func (c *Client) send(ctx context.Context, d *targets.Delivery, method, u string, extra http.Header) (*http.Response, error) {
	f, err := d.Open(ctx)
	if err != nil {
		return nil, fmt.Errorf("open stored file: %w", err)
	}
	resp, err := c.sendFile(ctx, d, f, method, u, extra)
	if err != nil {
		f.Close()
		return nil, err
	}
	resp.Body = bodyAndFile{ReadCloser: resp.Body, file: f}
	return resp, nil
}

// bodyAndFile closes the stored file with the answer's body.
type bodyAndFile struct {
	io.ReadCloser
	file io.Closer
}

func (b bodyAndFile) Close() error {
	err := b.ReadCloser.Close()
	b.file.Close()
	return err
}

// sendFile sends f as the body of the request send describes.
func (c *Client) sendFile(ctx context.Context, d *targets.Delivery, f io.ReadCloser, method, u string, extra http.Header) (*http.Response, error) {
	var err error

	body, length, ctype := io.Reader(f), d.Size, d.ContentType
	if c.s.Body == "multipart" {
		body, length, ctype, err = targets.MultipartBody(nil, c.s.Field, d.Filename, d.ContentType, f, d.Size)
		if err != nil {
			return nil, err
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, targets.Permanent(fmt.Errorf("build request: %w", err))
	}
	req.ContentLength = length
	if length == 0 {
		req.Body = http.NoBody
	}
	req.Header.Set("Content-Type", ctype)
	if c.s.Body == "raw" {
		req.Header.Set("Content-Disposition", targets.ContentDisposition("attachment", d.Filename))
	}
	req.Header.Set("Idempotency-Key", `"`+d.JobID+`"`)
	req.Header.Set("X-Ferry-Job-Id", d.JobID)
	req.Header.Set("X-Ferry-SHA256", d.SHA256)
	for k, v := range extra {
		req.Header[k] = v
	}
	for k, v := range c.s.Headers {
		req.Header.Set(k, v)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, targets.TransportError(ctx, "send", err)
	}
	return resp, nil
}

// answerError is nil for a 2xx answer, refused credentials for a 401, and
// the status's delivery error otherwise.
func answerError(what string, resp *http.Response) error {
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		return targets.CredentialsRefused(targets.StatusError(what, resp))
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		return targets.StatusError(what, resp)
	}
	return nil
}

// probe asks probe_url whether the job's file landed: landed on a 2xx,
// not on a 404, and an error for anything else.
func (c *Client) probe(ctx context.Context, d *targets.Delivery) (targets.Result, bool, error) {
	u := strings.NewReplacer("{job_id}", url.PathEscape(d.JobID), "{sha256}", d.SHA256).Replace(c.s.ProbeURL)
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		req, err := http.NewRequestWithContext(ctx, method, u, nil)
		if err != nil {
			return targets.Result{}, false, targets.Permanent(fmt.Errorf("probe: build request: %w", err))
		}
		for k, v := range c.s.Headers {
			req.Header.Set(k, v)
		}
		resp, err := c.http.Do(req)
		if err != nil {
			return targets.Result{}, false, targets.TransportError(ctx, "probe (did the earlier attempt land?)", err)
		}
		switch {
		case resp.StatusCode >= 200 && resp.StatusCode <= 299:
			id := remoteID(resp)
			resp.Body.Close()
			return targets.Result{RemoteID: id, StatusCode: resp.StatusCode}, true, nil
		case resp.StatusCode == http.StatusNotFound:
			resp.Body.Close()
			return targets.Result{}, false, nil
		case resp.StatusCode == http.StatusMethodNotAllowed && method == http.MethodGet:
			resp.Body.Close()
			continue
		}
		err = targets.StatusError("probe (did the earlier attempt land?)", resp)
		resp.Body.Close()
		te := targets.Classify(err)
		if resp.StatusCode == http.StatusUnauthorized {
			return targets.Result{}, false, targets.CredentialsRefused(err)
		}
		// Whatever the status, an unanswered question is not a refusal
		// of the file: retry later, send nothing now.
		return targets.Result{}, false, &targets.Error{Err: err, RetryAfter: te.RetryAfter, StatusCode: te.StatusCode}
	}
	return targets.Result{}, false, errors.New("probe: unreachable")
}

// remoteID reads {"id": "..."} from a JSON response, or the Location header.
func remoteID(resp *http.Response) string {
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		var v struct {
			ID any `json:"id"`
		}
		if json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&v) == nil && v.ID != nil {
			return fmt.Sprint(v.ID)
		}
	}
	return resp.Header.Get("Location")
}
