package workfront

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ferry-relay/ferry/targets"
)

// maxAnswerBytes bounds what is read of an answer: Workfront's are small.
const maxAnswerBytes = 1 << 20

// errCredentials marks Workfront's refusal of the session or API key sent.
var errCredentials = errors.New("credentials refused")

// APIError is an error envelope Workfront answered:
// {"error":{"class":"...","message":"..."}}, whatever the HTTP status.
type APIError struct {
	// Step is the request that failed: login, upload, document...
	Step string
	// Status is the HTTP status of the answer, 200 included.
	Status int
	// Class is Workfront's exception class, such as
	// com.attask.common.AuthenticationException.
	Class   string `json:"class"`
	Message string `json:"message"`
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%s: HTTP %d: %s: %s", e.Step, e.Status, e.Class, e.Message)
}

// buildFunc makes a request afresh: a repeated request reopens its body.
type buildFunc func(ctx context.Context) (*http.Request, error)

// attempt is what one delivery attempt remembers across its requests.
type attempt struct {
	// renewed is set once the attempt has logged in again after a
	// refused session: it does so once per attempt.
	renewed bool
}

// call sends the request build makes with the current credentials and
// decodes the data of the answer into out. When Workfront refuses the
// session, call forgets it (no request sends it again), logs in again and
// repeats the request: once per attempt.
//
// A refused API key, a refused login and a refused fresh session are
// refused credentials (targets.CredentialsRefused): the worker pauses the
// target, fails no job, and probes until they work again.
func (c *Client) call(ctx context.Context, at *attempt, step string, build buildFunc, out any) error {
	for {
		sess, err := c.session(ctx)
		if err != nil {
			return err
		}
		req, err := build(ctx)
		if err != nil {
			return fmt.Errorf("%s: %w", step, err)
		}
		c.authorize(req, sess)
		err = c.roundTrip(ctx, step, req, out)
		switch {
		case !errors.Is(err, errCredentials):
			return err
		case c.s.APIKey != "":
			return targets.CredentialsRefused(fmt.Errorf("api key refused by Workfront: %w", err))
		case at.renewed:
			c.forget(sess)
			return targets.CredentialsRefused(fmt.Errorf("fresh session refused by Workfront: %w", err))
		}
		c.forget(sess)
		at.renewed = true
	}
}

// forget drops the session if it is still the current one, so that no
// delivery sends a session Workfront refused.
func (c *Client) forget(sess string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sessionID == sess {
		c.sessionID = ""
	}
}

// authorize adds the API key or the session to req.
func (c *Client) authorize(req *http.Request, session string) {
	if c.s.APIKey == "" {
		req.Header.Set("SessionID", session)
		return
	}
	q := req.URL.Query()
	q.Set("apiKey", c.s.APIKey)
	req.URL.RawQuery = q.Encode()
}

// session returns the session to use, logging in if there is none.
// Concurrent deliveries that find the session refused log in once: the
// first logs in, the others take its session. With an API key there is no
// session: it returns "".
func (c *Client) session(ctx context.Context) (string, error) {
	if c.s.APIKey != "" {
		return "", nil
	}
	if id := c.currentSession(); id != "" {
		return id, nil
	}
	select {
	case c.loginSlot <- struct{}{}:
	case <-ctx.Done():
		return "", fmt.Errorf("%s: %w", stepLogin, ctx.Err())
	}
	defer func() { <-c.loginSlot }()
	if id := c.currentSession(); id != "" {
		return id, nil
	}
	c.mu.Lock()
	refused, at := c.loginRefused, c.loginRefusedAt
	c.mu.Unlock()
	if refused != nil && time.Since(at) < loginRefusalMemo {
		// The deliveries that queued behind a refused login do not each
		// send the same password again: an account may lock after a few.
		return "", refused
	}
	id, err := c.login(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	if targets.IsCredentials(err) {
		c.loginRefused, c.loginRefusedAt = err, time.Now()
	}
	if err != nil {
		return "", err
	}
	c.sessionID, c.loginRefused = id, nil
	return id, nil
}

// loginRefusalMemo is how long a refused login answers for the logins
// queued behind it. The target's pause and its probes take over after.
const loginRefusalMemo = 2 * time.Second

func (c *Client) currentSession() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sessionID
}

// login opens a session. The username and password travel in a form body,
// which Workfront accepts as it accepts them in the query string, so that
// they stay out of URLs: proxies' logs, and errors that quote the URL.
func (c *Client) login(ctx context.Context) (string, error) {
	form := url.Values{"username": {c.s.Username}, "password": {c.s.Password}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.api+"/login", strings.NewReader(form))
	if err != nil {
		return "", targets.Permanent(fmt.Errorf("%s: %w", stepLogin, err))
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	var out struct {
		SessionID string `json:"sessionID"`
	}
	err = c.roundTrip(ctx, stepLogin, req, &out)
	switch {
	case errors.Is(err, errCredentials):
		return "", targets.CredentialsRefused(fmt.Errorf("username or password refused by Workfront: %w", err))
	case err != nil:
		return "", err
	case out.SessionID == "":
		return "", errors.New("login: Workfront answered no sessionID")
	}
	return out.SessionID, nil
}

// roundTrip sends req, holding one of the Client's request slots until the
// answer is read, and decodes it.
func (c *Client) roundTrip(ctx context.Context, step string, req *http.Request, out any) error {
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		if req.Body != nil {
			req.Body.Close()
		}
		return fmt.Errorf("%s: %w", step, ctx.Err())
	}
	defer func() { <-c.sem }()
	resp, err := c.http.Do(req)
	if err != nil {
		return targets.TransportError(ctx, step, redact(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return targets.TransportError(ctx, step+": read answer", redact(err))
	}
	return decode(step, resp, body, out)
}

// decode reads Workfront's envelope: the data into out, or the error.
func decode(step string, resp *http.Response, body []byte, out any) error {
	var env struct {
		Data  json.RawMessage `json:"data"`
		Error *APIError       `json:"error"`
	}
	jsonErr := json.Unmarshal(body, &env)
	if env.Error != nil || resp.StatusCode < 200 || resp.StatusCode > 299 {
		return answerError(step, resp, body, env.Error)
	}
	if jsonErr != nil {
		return fmt.Errorf("%s: HTTP %d: the answer is not JSON: %s", step, resp.StatusCode, snippet(body))
	}
	data := env.Data
	if len(data) == 0 || string(data) == "null" {
		// Workfront's documentation shows some answers, the upload's
		// {"handle": ...} among them, without the data envelope.
		data = body
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s: unexpected answer %s: %w", step, snippet(body), err)
	}
	return nil
}

// answerError classifies a failure answer. The error class decides when it
// is known: an authentication error is a refusal of the credentials (the
// caller logs in again), a validation or not-found error is permanent,
// whatever the HTTP status. Otherwise the status decides, as for any
// target: 401 refuses the credentials, 408, 429 and 5xx are retryable
// (honouring Retry-After), other 4xx are permanent. An error envelope with
// a 2xx status and no known class is taken for a server-side failure:
// retryable.
func answerError(step string, resp *http.Response, body []byte, ae *APIError) error {
	var err error
	class := ""
	if ae != nil {
		ae.Step, ae.Status = step, resp.StatusCode
		err, class = ae, ae.Class
	} else {
		err = fmt.Errorf("%s: HTTP %d: %s", step, resp.StatusCode, snippet(body))
	}
	status := resp.StatusCode
	switch {
	case strings.HasSuffix(class, "AuthenticationException") || (status == http.StatusUnauthorized && !refusalClass(class)):
		return fmt.Errorf("%w: %w", errCredentials, err)
	case refusalClass(class):
		return &targets.Error{Err: err, Permanent: true, StatusCode: status}
	case status == http.StatusRequestTimeout || status == http.StatusTooManyRequests || status >= 500:
		retry := targets.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
		return &targets.Error{Err: err, RetryAfter: retry, StatusCode: status}
	case status >= 400:
		return &targets.Error{Err: err, Permanent: true, StatusCode: status}
	}
	return &targets.Error{Err: err, StatusCode: status}
}

// refusalClass reports whether Workfront's exception class says the
// request itself is wrong (a validation, not-found or permission error),
// which no retry can fix.
func refusalClass(class string) bool {
	name := class[strings.LastIndex(class, ".")+1:]
	for _, kind := range []string{"InvalidParameter", "Validation", "NotFound", "IllegalArgument", "Security", "AccessDenied", "Permission"} {
		if strings.Contains(name, kind) {
			return true
		}
	}
	return false
}

// refused reports whether err is Workfront refusing a request as invalid:
// permanent, with an error envelope, not about credentials.
func refused(err error) bool {
	var ae *APIError
	return targets.IsPermanent(err) && errors.As(err, &ae) && !errors.Is(err, errCredentials)
}

// snippet is the start of an answer, for error messages.
func snippet(body []byte) string {
	s := strings.TrimSpace(string(body))
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return fmt.Sprintf("%q", s)
}

// redact removes the API key from the URL that an *url.Error quotes.
func redact(err error) error {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return err
	}
	u, perr := url.Parse(ue.URL)
	if perr != nil {
		return &url.Error{Op: ue.Op, URL: "(unparsable URL)", Err: ue.Err}
	}
	if q := u.Query(); q.Has("apiKey") {
		q.Set("apiKey", "REDACTED")
		u.RawQuery = q.Encode()
	}
	return &url.Error{Op: ue.Op, URL: u.String(), Err: ue.Err}
}
