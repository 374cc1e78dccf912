// Package blueworks is the connector of kind "blueworks": it attaches a file
// to an IBM Blueworks Live process activity, application, decision, work
// instance, policy or post with one FileUpload call.
//
// The connector authenticates with OAuth2 client credentials
// (POST {base}/oauth/token) and caches the bearer token until a minute
// before it expires; a 401 renews it once within the same attempt. The
// upload is a single multipart POST {base}/scr/api/FileUpload. A token
// request refused (400 invalid_client, 401) is refused credentials
// (targets.CredentialsRefused): the target pauses, no job fails. A 401 to
// FileUpload with a token just issued, and a 403, say the user lacks author
// access to that process or item: a permanent failure of that job only.
//
// Before each FileUpload the connector records in the checkpoint when it
// sent it (upload_sent), and clears that on a definite answer. A retry that
// finds it asks ListFiles whether the upload landed, and adopts the file
// instead of sending it again (lookup.go). ListFiles answers only an
// account administrator: with other credentials the retry repeats the
// upload and marks the attempt uncertain (Delivery.MarkUncertain), since
// Blueworks may then hold two copies.
//
// Blueworks answers 200 with a "status" field saying how the upload went:
// SUCCESS is done, FAILED is retried, FAILED_DELETED (the virus scan
// deleted the file), SIZE (over the upload limit) and SPACE (the account is
// full) fail the job at once.
package blueworks

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/ferry-relay/ferry/targets"
)

// Defaults of the kind's settings.
const (
	// MaxFileBytesDefault is Blueworks Live's upload limit: 50 MB.
	MaxFileBytesDefault = 50 << 20
	// APIVersion is the X-IBM-API-Version the connector speaks.
	APIVersion = "20160630"
)

// Settings are the kind's own settings in the targets file.
type Settings struct {
	// BaseURL is the Blueworks Live server, such as
	// https://www.blueworkslive.com (or an EU data centre's host).
	BaseURL string `yaml:"base_url"`
	// ClientID and ClientSecret are the OAuth2 client credentials of a
	// User Service ID (or a Service ID, with OnBehalfOf) holding the
	// Artifact Authoring category.
	ClientID     string `yaml:"client_id"`
	ClientSecret string `yaml:"client_secret"`
	// OnBehalfOf is the username sent as X-On-Behalf-Of. Blueworks
	// requires it with Service ID credentials and not with User Service
	// ID credentials; it is sent only when set.
	OnBehalfOf string `yaml:"on_behalf_of"`
	// MaxFileBytes is the largest file sent (default 50 MB, the account's
	// default limit). Larger files fail at once without a request.
	MaxFileBytes int64 `yaml:"max_file_bytes"`
	// Versions is what a new version of a document does: refuse (the
	// default) or append (document.go). It is the targets file's common
	// versions setting, copied here by New.
	Versions string `yaml:"-"`
}

// Client delivers files to one Blueworks Live account.
type Client struct {
	s         Settings
	http      *http.Client
	uploadURL string
	listURL   string
	tokens    *tokenSource
	now       func() time.Time

	// reported are the attachment ids given to deliveries, never adopted
	// for another one.
	reported idSet

	mu            sync.Mutex
	listRefusedAt time.Time // ListFiles refused for want of an administrator
}

var (
	_ targets.Deliverer    = (*Client)(nil)
	_ targets.ParamChecker = (*Client)(nil)
	_ targets.SizeLimiter  = (*Client)(nil)

	_ targets.CredentialProber = (*Client)(nil)
	_ targets.Versioner        = (*Client)(nil)
)

// New builds the connector from its target configuration.
func New(cfg targets.Config) (targets.Deliverer, error) {
	var s Settings
	if err := cfg.Settings(&s); err != nil {
		return nil, err
	}
	mode, err := cfg.VersionsFor(targets.VersionsRefuse, targets.VersionsAppend)
	if err != nil {
		return nil, err
	}
	s.Versions = mode
	return NewClient(s, targets.HTTPClient(cfg))
}

// NewClient builds the connector from settings and an HTTP client.
func NewClient(s Settings, hc *http.Client) (*Client, error) {
	s.BaseURL = strings.TrimRight(s.BaseURL, "/")
	s.MaxFileBytes = cmp.Or(s.MaxFileBytes, MaxFileBytesDefault)
	u, err := url.Parse(s.BaseURL)
	switch {
	case s.BaseURL == "":
		return nil, errors.New("blueworks: base_url is required")
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return nil, fmt.Errorf("blueworks: base_url %q must be an http:// or https:// URL", s.BaseURL)
	case u.User != nil || u.RawQuery != "":
		return nil, errors.New("blueworks: base_url must not hold credentials or a query")
	case s.ClientID == "" || s.ClientSecret == "":
		return nil, errors.New("blueworks: client_id and client_secret are required")
	case s.MaxFileBytes < 0:
		return nil, errors.New("blueworks: max_file_bytes must be positive")
	case s.Versions != "" && s.Versions != targets.VersionsRefuse && s.Versions != targets.VersionsAppend:
		return nil, fmt.Errorf("blueworks: versions must be refuse or append, not %q", s.Versions)
	}
	s.Versions = cmp.Or(s.Versions, targets.VersionsRefuse)
	return &Client{
		s:         s,
		http:      hc,
		uploadURL: s.BaseURL + "/scr/api/FileUpload",
		listURL:   s.BaseURL + "/scr/api/ListFiles",
		tokens:    newTokenSource(hc, s.BaseURL+"/oauth/token", s.ClientID, s.ClientSecret),
		now:       time.Now,
	}, nil
}

// MaxFileBytes is the largest file the target accepts.
func (c *Client) MaxFileBytes() int64 { return c.s.MaxFileBytes }

// CheckParams reports a missing or invalid locationField, ancestorId or
// parentId, following which ids each location needs.
func (c *Client) CheckParams(params map[string]string) error {
	_, _, _, err := uploadFields(params)
	return err
}

// Deliver uploads the file in one FileUpload request, renewing the token
// once if Blueworks answers 401. When an earlier attempt's upload went
// unanswered, it first asks ListFiles whether that upload landed.
func (c *Client) Deliver(ctx context.Context, d *targets.Delivery) (targets.Result, error) {
	if d.Size > c.s.MaxFileBytes {
		return targets.Result{}, targets.Permanent(fmt.Errorf(
			"blueworks: file is %d bytes, over the %d-byte upload limit (max_file_bytes)", d.Size, c.s.MaxFileBytes))
	}
	loc, ancestor, parent, err := uploadFields(d.Params)
	if err != nil {
		return targets.Result{}, targets.Permanent(fmt.Errorf("blueworks: %w", err))
	}
	if err := c.checkDocument(d); err != nil {
		return targets.Result{}, err
	}
	if sent := d.Checkpoint[CheckpointSent]; sent != "" {
		if r := c.recoverLost(ctx, d, uploadForm{loc, ancestor, parent}, sent); r.done {
			return withRemote(r.res, d, r.err), r.err
		}
	}
	fields := []targets.Field{
		{Name: "locationField", Value: loc},
		{Name: "ancestorIdField", Value: ancestor},
		{Name: "parentIdField", Value: parent},
	}
	rejected := ""
	for {
		tok, err := c.tokens.Token(ctx, rejected)
		if err != nil {
			return targets.Result{}, fmt.Errorf("blueworks: %w", err)
		}
		sentAt := c.now().UTC().Format(time.RFC3339Nano)
		if err := d.Save(ctx, targets.Checkpoint{CheckpointSent: sentAt}); err != nil {
			return targets.Result{}, fmt.Errorf("blueworks: save checkpoint: %w", err)
		}
		res, err := c.upload(ctx, d, fields, tok)
		if err == nil || definite(res, err) {
			_ = d.Save(ctx, targets.Checkpoint{CheckpointSent: ""})
		}
		if res.StatusCode == http.StatusUnauthorized && rejected == "" {
			rejected = tok // expired or revoked: renew once
			continue
		}
		if err != nil {
			return res, fmt.Errorf("blueworks: %w", err)
		}
		c.reported.add(res.RemoteID)
		return withRemote(res, d, nil), nil
	}
}

// CheckpointSent holds when (RFC 3339, UTC) a FileUpload whose outcome is
// unknown was sent: it may have landed. ("1" in checkpoints written before
// the time was recorded.)
const CheckpointSent = "upload_sent"

// definite reports whether a failed FileUpload surely stored nothing: a
// 4xx, or a 200 whose status is not SUCCESS.
func definite(res targets.Result, err error) bool {
	te := targets.Classify(err)
	return res.StatusCode >= 400 && res.StatusCode < 500 || res.StatusCode == http.StatusOK && te.StatusCode == 0 && !errors.Is(err, errUnreadable)
}

// errUnreadable marks a 200 whose body is not FileUpload's answer.
var errUnreadable = errors.New("FileUpload: unreadable answer")

// ProbeCredentials asks for a new token.
func (c *Client) ProbeCredentials(ctx context.Context) error {
	_, err := c.tokens.Token(ctx, c.tokens.current())
	return err
}

// uploadResponse is FileUpload's answer; every field is a string.
type uploadResponse struct {
	Status     string `json:"status"`
	ID         string `json:"id"`
	FileItemID string `json:"fileItemId"`
}

// upload makes one FileUpload request with the token tok.
func (c *Client) upload(ctx context.Context, d *targets.Delivery, fields []targets.Field, tok string) (targets.Result, error) {
	f, err := d.Open(ctx)
	if err != nil {
		return targets.Result{}, fmt.Errorf("open stored file: %w", err)
	}
	defer f.Close()
	body, length, ctype, err := targets.MultipartBody(fields, "fileData", d.Filename, d.ContentType, f, d.Size)
	if err != nil {
		return targets.Result{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.uploadURL, body)
	if err != nil {
		return targets.Result{}, targets.Permanent(fmt.Errorf("FileUpload: build request: %w", err))
	}
	req.ContentLength = length
	req.Header.Set("Content-Type", ctype)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("X-IBM-API-Version", APIVersion)
	if c.s.OnBehalfOf != "" {
		req.Header.Set("X-On-Behalf-Of", c.s.OnBehalfOf)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return targets.Result{}, targets.TransportError(ctx, "FileUpload", err)
	}
	defer resp.Body.Close()
	res := targets.Result{StatusCode: resp.StatusCode}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		// 401 after a fresh token (the user lacks author access), 400,
		// 403, 404 and 405 are permanent; 408, 429 and 5xx retryable.
		return res, targets.StatusError("FileUpload", resp)
	}
	var ur uploadResponse
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&ur); err != nil {
		// Retried: a 200 that is not the JSON answer comes from
		// something in front of Blueworks, not from FileUpload.
		return res, fmt.Errorf("%w: %w", errUnreadable, err)
	}
	if err := statusError(ur.Status); err != nil {
		return res, err
	}
	// id is what FileDownload takes; fileItemId is the attachment item.
	// The job's remote id is id, or fileItemId if id is ever empty.
	res.RemoteID = cmp.Or(ur.ID, ur.FileItemID)
	return res, nil
}

// statusError maps FileUpload's status to the delivery error, nil for
// SUCCESS.
func statusError(status string) error {
	switch status {
	case "SUCCESS":
		return nil
	case "FAILED":
		return errors.New("FileUpload: status FAILED: Blueworks could not store the file")
	case "FAILED_DELETED":
		return targets.Permanent(errors.New(
			"FileUpload: status FAILED_DELETED: Blueworks deleted the file, most likely flagged by its virus scan"))
	case "SIZE":
		return targets.Permanent(errors.New(
			"FileUpload: status SIZE: the file is over the account's upload limit (50 MB by default); lower max_file_bytes to match"))
	case "SPACE":
		return targets.Permanent(errors.New(
			"FileUpload: status SPACE: Blueworks account has no space left: free space or raise the quota, then retry the job"))
	default:
		// Unknown statuses are retried rather than trusted: the
		// documented list says "include", so more may exist.
		return fmt.Errorf("FileUpload: unexpected status %q", status)
	}
}
