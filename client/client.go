// Package client is a Go client of ferry's HTTP API: uploads, jobs,
// batches and targets. The ferry CLI uses it; it speaks to the API over
// HTTP like any other client, and knows nothing of ferry's storage.
//
// Errors the API answered are *Error, with the HTTP status and ferry's
// error code; Temporary tells those worth retrying.
package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ferry-relay/ferry/apitypes"
)

// Client calls one ferry server with one API key. It is safe for
// concurrent use.
type Client struct {
	base *url.URL
	key  string
	http *http.Client
}

// New returns a client of the ferry API at server (such as
// http://127.0.0.1:8080) authenticating with key. A nil hc uses a client
// with connection and header timeouts but no overall timeout, since an
// upload may take hours.
func New(server, key string, hc *http.Client) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(server, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("server %q: want an http:// or https:// URL", server)
	}
	if key == "" {
		return nil, errors.New("no API key: pass --key or set FERRY_API_KEY")
	}
	if hc == nil {
		hc = &http.Client{Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConnsPerHost:   32,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: 5 * time.Minute,
		}}
	}
	return &Client{base: u, key: key, http: hc}, nil
}

// Error is an error answer of the API.
type Error struct {
	// StatusCode is the HTTP status.
	StatusCode int
	// Code is ferry's error code (not_found, invalid_params, ...).
	Code    string
	Message string
}

func (e *Error) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("HTTP %d: %s", e.StatusCode, e.Message)
	}
	return fmt.Sprintf("%s (HTTP %d): %s", e.Code, e.StatusCode, e.Message)
}

// Temporary reports whether the same request may succeed later: the
// server was overloaded, unavailable or failed inside.
func (e *Error) Temporary() bool {
	return e.StatusCode >= 500 || e.StatusCode == http.StatusTooManyRequests || e.StatusCode == http.StatusRequestTimeout
}

// UnreachableError means no server answered at the client's address: the
// connection was refused, or the name did not resolve.
type UnreachableError struct {
	// Server is the address tried.
	Server string
	Err    error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("no ferry server answers at %s: %v", e.Server, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// unreachable returns an *UnreachableError when err says nothing listens
// at base (refused, unknown host), nil otherwise.
func unreachable(base *url.URL, err error) error {
	var oe *net.OpError
	var de *net.DNSError
	switch {
	case errors.As(err, &de):
		return &UnreachableError{Server: base.String(), Err: de}
	case errors.As(err, &oe) && oe.Op == "dial":
		cause := oe.Err
		if se := (*os.SyscallError)(nil); errors.As(cause, &se) {
			cause = se.Err // "connection refused", without "connect:"
		}
		return &UnreachableError{Server: base.String(), Err: cause}
	}
	return nil
}

// IsNotFound reports whether err is the API's 404.
func IsNotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.StatusCode == http.StatusNotFound
}

// Retryable reports whether a request that failed with err may succeed if
// sent again: a temporary answer or a failure of the connection. A
// canceled context is not retryable.
func Retryable(ctx context.Context, err error) bool {
	if err == nil || ctx.Err() != nil {
		return false
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Temporary()
	}
	return true // no answer: refused, reset, timed out
}

// do sends a request and returns the response of a 2xx answer, or the
// answer as an *Error.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, body io.Reader, size int64, header http.Header) (*http.Response, error) {
	// path is escaped already (url.PathEscape of each name in it).
	u := c.base.String() + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if body != nil {
		req.ContentLength = size
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	resp, err := c.http.Do(req)
	if err != nil {
		if ue := unreachable(c.base, err); ue != nil {
			return nil, ue
		}
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp, nil
	}
	defer resp.Body.Close()
	return nil, readError(resp)
}

// readError turns an error answer into an *Error.
func readError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var e apitypes.Error
	if json.Unmarshal(b, &e) == nil && e.Error.Message != "" {
		return &Error{StatusCode: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message}
	}
	msg := strings.TrimSpace(string(b))
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	return &Error{StatusCode: resp.StatusCode, Message: msg}
}

// call sends a request with an optional JSON body and decodes the JSON
// answer into out, returning the HTTP status.
func (c *Client) call(ctx context.Context, method, path string, query url.Values, in, out any) (int, error) {
	var body io.Reader
	var size int64
	header := http.Header{}
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, fmt.Errorf("%s %s: %w", method, path, err)
		}
		body, size = bytes.NewReader(b), int64(len(b))
		header.Set("Content-Type", "application/json")
	}
	resp, err := c.do(ctx, method, path, query, body, size, header)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
		}
	}
	return resp.StatusCode, nil
}

// Targets lists the configured targets.
func (c *Client) Targets(ctx context.Context) ([]apitypes.Target, error) {
	var out apitypes.TargetList
	_, err := c.call(ctx, http.MethodGet, "/v1/targets", nil, nil, &out)
	return out.Targets, err
}

// ResumeTarget asks for an immediate probe of a target paused for refused
// credentials (after its secret was fixed). It reports whether the target
// was paused.
func (c *Client) ResumeTarget(ctx context.Context, target string) (apitypes.ResumeResult, error) {
	var out apitypes.ResumeResult
	_, err := c.call(ctx, http.MethodPost, "/v1/targets/"+url.PathEscape(target)+"/resume", nil, nil, &out)
	return out, err
}

// CheckTarget asks whether uploads to target with params (over the
// defaults of batch, if it names a batch object) would be accepted. It
// returns the parameters a job would get, or the API's refusal.
func (c *Client) CheckTarget(ctx context.Context, target, batch string, params map[string]string) (map[string]string, error) {
	in := apitypes.CheckRequest{Params: params, Batch: batch}
	var out apitypes.CheckResult
	_, err := c.call(ctx, http.MethodPost, "/v1/targets/"+url.PathEscape(target)+"/check", nil, in, &out)
	return out.Params, err
}

// CreateBatch creates the batch object b, or returns the existing one of
// that name (created=false) when it has the same target and parameters.
// Another target or other parameters are an *Error with status 409.
func (c *Client) CreateBatch(ctx context.Context, b apitypes.Batch) (apitypes.Batch, bool, error) {
	var out apitypes.Batch
	code, err := c.call(ctx, http.MethodPost, "/v1/batches", nil, b, &out)
	return out, code == http.StatusCreated, err
}

// Batch returns the summary of a batch.
func (c *Client) Batch(ctx context.Context, name string) (apitypes.BatchSummary, error) {
	var out apitypes.BatchSummary
	_, err := c.call(ctx, http.MethodGet, batchPath(name), nil, nil, &out)
	return out, err
}

// Batches returns a page of batch summaries, by name after cursor.
func (c *Client) Batches(ctx context.Context, cursor string, limit int) (apitypes.BatchPage, error) {
	q := url.Values{}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out apitypes.BatchPage
	_, err := c.call(ctx, http.MethodGet, "/v1/batches", q, nil, &out)
	return out, err
}

func batchPath(name string) string { return "/v1/batches/" + url.PathEscape(name) }

// BatchKeys calls fn with each idempotency key accepted in the batch. A
// batch that does not exist has none.
func (c *Client) BatchKeys(ctx context.Context, name string, fn func(key string)) error {
	resp, err := c.do(ctx, http.MethodGet, batchPath(name)+"/keys", nil, nil, 0, nil)
	if IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if k := sc.Text(); k != "" {
			fn(k)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("keys of batch %q: %w", name, err)
	}
	return nil
}

// Report returns the batch report as the API streams it, in format csv
// or json, only the jobs in status if it is set. The caller closes it.
func (c *Client) Report(ctx context.Context, name, format string, status apitypes.Status) (io.ReadCloser, error) {
	q := url.Values{"format": {format}}
	if status != "" {
		q.Set("status", string(status))
	}
	resp, err := c.do(ctx, http.MethodGet, batchPath(name)+"/report", q, nil, 0, nil)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// ReportRows calls fn with each row of the batch report (only the jobs in
// status, if set), as the rows arrive.
func (c *Client) ReportRows(ctx context.Context, name string, status apitypes.Status, fn func(apitypes.ReportRow) error) error {
	body, err := c.Report(ctx, name, "json", status)
	if err != nil {
		return err
	}
	defer body.Close()
	dec := json.NewDecoder(body)
	if _, err := dec.Token(); err != nil { // [
		return fmt.Errorf("report of batch %q: %w", name, err)
	}
	for dec.More() {
		var row apitypes.ReportRow
		if err := dec.Decode(&row); err != nil {
			return fmt.Errorf("report of batch %q: %w", name, err)
		}
		if err := fn(row); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil { // ]
		return fmt.Errorf("report of batch %q: %w", name, err)
	}
	return nil
}

// RetryBatch re-queues the batch's FAILED jobs whose last error contains
// errorSubstr (all of them if it is empty) and returns how many.
func (c *Client) RetryBatch(ctx context.Context, name, errorSubstr string) (int, error) {
	var out apitypes.RequeueResult
	_, err := c.call(ctx, http.MethodPost, batchPath(name)+"/retry", nil, apitypes.BatchRetryRequest{Error: errorSubstr}, &out)
	return out.Requeued, err
}

// RetryBatchGroup re-queues the batch's FAILED jobs of one failure group
// (as FailureGroups names it) and returns how many.
func (c *Client) RetryBatchGroup(ctx context.Context, name, group string) (int, error) {
	var out apitypes.RequeueResult
	_, err := c.call(ctx, http.MethodPost, batchPath(name)+"/retry", nil, apitypes.BatchRetryRequest{ErrorGroup: &group}, &out)
	return out.Requeued, err
}

// FailureGroups returns the batch's FAILED jobs grouped by normalised
// error, largest group first.
func (c *Client) FailureGroups(ctx context.Context, name string) ([]apitypes.FailureGroup, error) {
	var out apitypes.FailureGroups
	_, err := c.call(ctx, http.MethodGet, batchPath(name)+"/failures", nil, nil, &out)
	return out.Groups, err
}

// Throughput returns the batch's deliveries over its life, oldest bucket
// first.
func (c *Client) Throughput(ctx context.Context, name string) ([]apitypes.ThroughputPoint, error) {
	var out apitypes.Throughput
	_, err := c.call(ctx, http.MethodGet, batchPath(name)+"/throughput", nil, nil, &out)
	return out.Points, err
}

// Activity returns what each target did in the last hour.
func (c *Client) Activity(ctx context.Context) (apitypes.Activity, error) {
	var out apitypes.Activity
	_, err := c.call(ctx, http.MethodGet, "/v1/activity", nil, nil, &out)
	return out, err
}

// RetryFailed re-queues the FAILED jobs matching f and returns how many.
// An empty f needs all=true, which re-queues every FAILED job.
func (c *Client) RetryFailed(ctx context.Context, f apitypes.RequeueFilter, all bool) (int, error) {
	in := apitypes.RequeueRequest{RequeueFilter: f, All: all}
	var out apitypes.RequeueResult
	_, err := c.call(ctx, http.MethodPost, "/v1/jobs/retry", nil, in, &out)
	return out.Requeued, err
}

// Job returns the job with id.
func (c *Client) Job(ctx context.Context, id string) (apitypes.Job, error) {
	var out apitypes.Job
	_, err := c.call(ctx, http.MethodGet, "/v1/jobs/"+url.PathEscape(id), nil, nil, &out)
	return out, err
}

// Attempts returns the attempts at delivering job id, oldest first.
func (c *Client) Attempts(ctx context.Context, id string) ([]apitypes.Attempt, error) {
	var out apitypes.AttemptList
	_, err := c.call(ctx, http.MethodGet, "/v1/jobs/"+url.PathEscape(id)+"/attempts", nil, nil, &out)
	return out.Attempts, err
}

// JobFilter selects jobs for Jobs. Empty fields match everything.
type JobFilter struct {
	Status apitypes.Status
	Target string
	Batch  string
	// FilenameContains matches jobs whose file name contains it, ignoring
	// case.
	FilenameContains string
	// Uncertain keeps the jobs with an attempt that repeated a creating
	// step whose first outcome was unknown (a duplicate may exist at the
	// target).
	Uncertain bool
	// Limit is the page size (1-1000; the server's default if 0).
	Limit int
	// Cursor is the next_cursor of the previous page.
	Cursor string
}

// Jobs returns a page of jobs matching f, newest first, and the cursor of
// the next page ("" on the last).
func (c *Client) Jobs(ctx context.Context, f JobFilter) ([]apitypes.Job, string, error) {
	q := url.Values{}
	for k, v := range map[string]string{"status": string(f.Status), "target": f.Target, "batch": f.Batch, "cursor": f.Cursor,
		"filename": f.FilenameContains} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	if f.Uncertain {
		q.Set("uncertain", "true")
	}
	var out apitypes.JobList
	_, err := c.call(ctx, http.MethodGet, "/v1/jobs", q, nil, &out)
	return out.Jobs, out.NextCursor, err
}

// RetryJob re-queues one FAILED or CANCELED job.
func (c *Client) RetryJob(ctx context.Context, id string) (apitypes.Job, error) {
	var out apitypes.Job
	_, err := c.call(ctx, http.MethodPost, "/v1/jobs/"+url.PathEscape(id)+"/retry", nil, nil, &out)
	return out, err
}

// CancelJob stops a QUEUED or RETRYING job.
func (c *Client) CancelJob(ctx context.Context, id string) (apitypes.Job, error) {
	var out apitypes.Job
	_, err := c.call(ctx, http.MethodPost, "/v1/jobs/"+url.PathEscape(id)+"/cancel", nil, nil, &out)
	return out, err
}
