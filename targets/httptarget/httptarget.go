// Package httptarget is the connector of kind "http": one request that
// carries the file to a URL, as the raw body or as a multipart form.
//
// The request carries the job's identity so the receiver can de-duplicate:
// X-Ferry-Job-Id, X-Ferry-SHA256 and Content-Disposition with the filename.
// A JSON response with a string "id", or else a Location header, becomes the
// job's remote id.
package httptarget

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
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
}

// Client delivers files to one URL.
type Client struct {
	s    Settings
	http *http.Client
}

var _ targets.Deliverer = (*Client)(nil)

// New builds the connector from its target configuration.
func New(cfg targets.Config) (targets.Deliverer, error) {
	var s Settings
	if err := cfg.Settings(&s); err != nil {
		return nil, err
	}
	// A transport of its own that keeps a connection per delivery slot:
	// http.DefaultTransport keeps 2 idle per host, so concurrent
	// deliveries would open and close a connection each.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = max(cfg.Concurrency, 2)
	return NewClient(s, &http.Client{Transport: tr})
}

// NewClient builds the connector from settings and an HTTP client.
func NewClient(s Settings, hc *http.Client) (*Client, error) {
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
	}
	return &Client{s: s, http: hc}, nil
}

// Deliver sends the file in one request.
func (c *Client) Deliver(ctx context.Context, d *targets.Delivery) (targets.Result, error) {
	f, err := d.Open(ctx)
	if err != nil {
		return targets.Result{}, fmt.Errorf("open stored file: %w", err)
	}
	defer f.Close()

	body, length, ctype := io.Reader(f), d.Size, d.ContentType
	if c.s.Body == "multipart" {
		body, length, ctype, err = targets.MultipartBody(nil, c.s.Field, d.Filename, d.ContentType, f, d.Size)
		if err != nil {
			return targets.Result{}, err
		}
	}
	req, err := http.NewRequestWithContext(ctx, c.s.Method, c.s.URL, body)
	if err != nil {
		return targets.Result{}, targets.Permanent(fmt.Errorf("build request: %w", err))
	}
	req.ContentLength = length
	if length == 0 {
		req.Body = http.NoBody
	}
	req.Header.Set("Content-Type", ctype)
	if c.s.Body == "raw" {
		req.Header.Set("Content-Disposition", targets.ContentDisposition("attachment", d.Filename))
	}
	req.Header.Set("X-Ferry-Job-Id", d.JobID)
	req.Header.Set("X-Ferry-SHA256", d.SHA256)
	for k, v := range c.s.Headers {
		req.Header.Set(k, v)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return targets.Result{}, targets.TransportError(ctx, "send", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return targets.Result{StatusCode: resp.StatusCode}, targets.StatusError("send", resp)
	}
	return targets.Result{RemoteID: remoteID(resp), StatusCode: resp.StatusCode}, nil
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
