package fourd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/ferry-relay/ferry/targets"
)

// maxReplyBytes bounds what is read of a 4D answer: an entity with large
// text attributes can be big, BLOBs and pictures are deferred.
const maxReplyBytes = 4 << 20

// 4D error codes the connector acts on (componentSignature "dbmg").
const (
	errStampChanged     = 1263 // "Given stamp does not match current one"
	errNoAttribute      = 1500 // "The "x" attribute cannot be found"
	errNoEntity         = 1542 // "Cannot find entity with "k" key"
	errNoPermission     = 1561 // "No permission to ..."
	errValueRefused     = 1569 // a validation rule refused a value
	errValidationFailed = 1570 // "Entity fails validation"
	errNoDataclass      = 1800 // "datastore class cannot be found": no such dataclass, or not exposed
	errNotFoundInCache  = 1802 // a server-cached object (entity set, upload) is gone
)

// permanentCodes are 4D's configuration errors: the request names a
// dataclass, attribute or entity 4D does not have or will not let the REST
// user change. They are about the job's parameters or the target's
// settings, not 4D's health: no retry can fix them, whatever the HTTP
// status they come with. "About REST requests"
// (developer.4d.com/docs/REST/REST_requests) gives 404 for "the dataclass
// is not exposed to REST or the entity does not exist".
var permanentCodes = []int{errNoAttribute, errNoEntity, errNoPermission, errValueRefused, errValidationFailed, errNoDataclass}

// upload sends the bytes to $upload and returns the ID 4D gives them.
func (c *Client) upload(ctx context.Context, d *targets.Delivery) (string, error) {
	query, ctype := "$binary=true", "application/octet-stream"
	if mt, _, err := mime.ParseMediaType(d.ContentType); err == nil && strings.HasPrefix(mt, "image/") {
		// A picture attribute needs 4D to know the codec.
		query, ctype = "$rawPict=true", d.ContentType
	}
	if c.s.UploadTimeout > 0 {
		query += "&$timeout=" + strconv.Itoa(int(c.s.UploadTimeout.Seconds()))
	}
	// The '$' stays literal in the query, as 4D's documentation writes it.
	u := c.base + "/$upload?" + query
	resp, err := c.send(ctx, "upload", func() (*http.Request, error) {
		f, err := d.Open(ctx)
		if err != nil {
			return nil, fmt.Errorf("open stored file: %w", err)
		}
		body := io.ReadCloser(f)
		if d.Size == 0 {
			f.Close()
			body = http.NoBody
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, body)
		if err != nil {
			body.Close()
			return nil, targets.Permanent(fmt.Errorf("upload: build request: %w", err))
		}
		req.ContentLength = d.Size
		req.Header.Set("Content-Type", ctype)
		// 4D ignores it; it names the bytes for proxies and logs.
		req.Header.Set("Content-Disposition", targets.ContentDisposition("attachment", d.Filename))
		return req, nil
	})
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return "", refusal("upload", resp)
	}
	var v struct {
		ID string `json:"ID"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxReplyBytes)).Decode(&v); err != nil {
		return "", fmt.Errorf("upload: unreadable answer: %w", err)
	}
	if v.ID == "" {
		return "", errors.New(`upload: 4D answered no "ID"`)
	}
	return v.ID, nil
}

// entity is what the connector reads of an entity: its __STAMP, which
// attributes hold a file (a deferred BLOB or picture) and its text values.
type entity struct {
	stamp int64
	bound map[string]bool
	texts map[string]string
}

// readStamp reads the entity's current __STAMP.
func (c *Client) readStamp(ctx context.Context, j job) (int64, error) {
	e, err := c.readEntity(ctx, j)
	return e.stamp, err
}

// readEntity reads the entity (GET /rest/{Dataclass}({key})).
func (c *Client) readEntity(ctx context.Context, j job) (entity, error) {
	u := c.base + "/" + url.PathEscape(j.dataclass) + "(" + url.PathEscape(j.key) + ")"
	what := "read " + j.dataclass + "(" + j.key + ")"
	resp, err := c.send(ctx, what, func() (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, targets.Permanent(fmt.Errorf("%s: build request: %w", what, err))
		}
		return req, nil
	})
	if err != nil {
		return entity{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return entity{}, refusal(what, resp)
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxReplyBytes))
	if err != nil {
		return entity{}, targets.TransportError(ctx, what, err)
	}
	var r reply
	var attrs map[string]json.RawMessage
	if err := json.Unmarshal(raw, &r); err != nil {
		return entity{}, fmt.Errorf("%s: unreadable answer: %w", what, err)
	}
	if err := json.Unmarshal(raw, &attrs); err != nil {
		return entity{}, fmt.Errorf("%s: unreadable answer: %w", what, err)
	}
	if r.Stamp == nil {
		return entity{}, targets.Permanent(fmt.Errorf("%s: the entity has no __STAMP", what))
	}
	e := entity{stamp: r.stamp(), bound: map[string]bool{}, texts: map[string]string{}}
	for name, v := range attrs {
		var deferred struct {
			Deferred *json.RawMessage `json:"__deferred"`
		}
		var text string
		switch {
		case json.Unmarshal(v, &deferred) == nil && deferred.Deferred != nil:
			e.bound[name] = true
		case json.Unmarshal(v, &text) == nil:
			e.texts[name] = text
		}
	}
	return e, nil
}

// update attaches the upload to the entity's attribute, and writes the
// file's name into the name attribute if there is one. It returns the
// answer's status and the entity's new __STAMP (-1 if 4D gave none).
func (c *Client) update(ctx context.Context, j job, stamp int64, id, filename string) (int, int64, error) {
	payload := map[string]any{"__KEY": j.key, "__STAMP": stamp, j.attribute: map[string]string{"ID": id}}
	if j.nameAttribute != "" {
		payload[j.nameAttribute] = filename
	}
	body, err := json.Marshal(payload)
	if err != nil {
		return 0, -1, targets.Permanent(fmt.Errorf("update: %w", err))
	}
	u := c.base + "/" + url.PathEscape(j.dataclass) + "?$method=update"
	what := "update " + j.dataclass + "(" + j.key + ")"
	resp, err := c.send(ctx, what, func() (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
		if err != nil {
			return nil, targets.Permanent(fmt.Errorf("%s: build request: %w", what, err))
		}
		req.Header.Set("Content-Type", "application/json")
		return req, nil
	})
	if err != nil {
		return 0, -1, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxReplyBytes))
	if err != nil {
		return 0, -1, targets.TransportError(ctx, what, err)
	}
	var r reply
	jsonErr := json.Unmarshal(raw, &r)
	ok := resp.StatusCode >= 200 && resp.StatusCode <= 299
	switch {
	case r.stampChanged():
		current := int64(-1)
		if r.Stamp != nil && r.stamp() != stamp {
			current = r.stamp()
		}
		return 0, -1, &staleStampError{current: current, err: fmt.Errorf("%s: __STAMP %d is stale, someone saved the entity meanwhile: %s", what, stamp, r.messages())}
	case r.has(errNotFoundInCache) || r.mentions(id):
		return 0, -1, &uploadGoneError{err: fmt.Errorf("%s: 4D no longer knows upload %s: %s", what, id, r.messages())}
	case ok && jsonErr != nil:
		return 0, -1, fmt.Errorf("%s: unreadable answer: %w", what, jsonErr)
	case ok && len(r.Errors) == 0 && (r.Status == nil || r.Status.Success):
		saved := int64(-1)
		if r.Stamp != nil {
			saved = r.stamp()
		}
		return resp.StatusCode, saved, nil
	case ok && r.permanent():
		return 0, -1, targets.Permanent(fmt.Errorf("%s: 4D refused: %s", what, r.messages()))
	case ok:
		// An __ERROR whose code is not a known refusal: retryable.
		return 0, -1, fmt.Errorf("%s: 4D answered an error: %s", what, r.messages())
	}
	resp.Body = io.NopCloser(bytes.NewReader(raw))
	return 0, -1, refusal(what, resp)
}

// refusal turns a non-2xx answer into a delivery error. The status
// decides first, as targets.StatusError does: 408, 429 and 503 say "later"
// and are retryable whatever __ERROR holds, 401 (after the one new login
// send makes) is refused credentials and 402 (4D's "maximum number of
// sessions reached") retryable, since sessions end. Then a configuration
// error code (permanentCodes) is permanent whatever the status. Any other
// 4xx is a refusal of this request, coded or not: permanent. Any other 5xx
// is retryable.
//
// Permanent means "about this job": the worker fails the job at once and
// does not count it against the target's health (its circuit breaker), so
// a job naming a dataclass 4D does not have neither burns max_attempts nor
// holds back the target's other jobs.
func refusal(what string, resp *http.Response) error {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxReplyBytes))
	resp.Body = io.NopCloser(bytes.NewReader(raw))
	te := targets.Classify(targets.StatusError(what, resp))
	var r reply
	if json.Unmarshal(raw, &r) != nil || len(r.Errors) == 0 {
		r = reply{}
	} else {
		te.Err = fmt.Errorf("%s: HTTP %d: %s", what, resp.StatusCode, r.messages())
	}
	switch code := resp.StatusCode; {
	case code == http.StatusRequestTimeout, code == http.StatusTooManyRequests, code == http.StatusServiceUnavailable:
		te.Permanent, te.RetryAfter = false, retryAfter(resp)
	case code == http.StatusUnauthorized && !r.permanent():
		return targets.CredentialsRefused(te)
	case code == http.StatusPaymentRequired:
		te.Permanent, te.RetryAfter = false, retryAfter(resp)
	case r.permanent(), code >= 400 && code < 500:
		te.Permanent, te.RetryAfter = true, 0
	default:
		te.Permanent = false
	}
	return te
}

// permanent tells whether an error code says no retry can help.
func (r reply) permanent() bool {
	for _, code := range permanentCodes {
		if r.has(code) {
			return true
		}
	}
	return false
}

// reply is what the connector reads of a 4D answer about an entity.
type reply struct {
	Stamp  *json.Number `json:"__STAMP"`
	Status *struct {
		Status     int    `json:"status"`
		StatusText string `json:"statusText"`
		Success    bool   `json:"success"`
	} `json:"__STATUS"`
	Errors []struct {
		Message            string `json:"message"`
		ComponentSignature string `json:"componentSignature"`
		ErrCode            int    `json:"errCode"`
	} `json:"__ERROR"`
}

// stamp is __STAMP as a number, -1 when it is not one.
func (r reply) stamp() int64 {
	n, err := r.Stamp.Int64()
	if err != nil {
		return -1
	}
	return n
}

func (r reply) stampChanged() bool {
	return r.Status != nil && !r.Status.Success && r.Status.Status == 2 || r.has(errStampChanged)
}

func (r reply) has(code int) bool {
	for _, e := range r.Errors {
		if e.ErrCode == code {
			return true
		}
	}
	return false
}

// mentions tells whether an error names the upload ID: 4D's code for an
// unknown or expired upload is not documented, its message is taken to
// name the ID.
func (r reply) mentions(id string) bool {
	for _, e := range r.Errors {
		if id != "" && strings.Contains(strings.ToUpper(e.Message), strings.ToUpper(id)) {
			return true
		}
	}
	return false
}

func (r reply) messages() string {
	var parts []string
	if r.Status != nil && r.Status.StatusText != "" {
		parts = append(parts, r.Status.StatusText)
	}
	for _, e := range r.Errors {
		parts = append(parts, fmt.Sprintf("%s (%s %d)", e.Message, e.ComponentSignature, e.ErrCode))
	}
	if len(parts) == 0 {
		return "no error message"
	}
	return strings.Join(parts, "; ")
}

// staleStampError is an update refused because __STAMP is stale. current
// is the entity's stamp when 4D's answer gave it, otherwise -1.
type staleStampError struct {
	current int64
	err     error
}

func (e *staleStampError) Error() string { return e.err.Error() }
func (e *staleStampError) Unwrap() error { return e.err }

// uploadGoneError is an update refused because 4D no longer knows the
// upload ID: its $timeout passed.
type uploadGoneError struct{ err error }

func (e *uploadGoneError) Error() string { return e.err.Error() }
func (e *uploadGoneError) Unwrap() error { return e.err }

func isUploadGone(err error) bool {
	var e *uploadGoneError
	return errors.As(err, &e)
}
