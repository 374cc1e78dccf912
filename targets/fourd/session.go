package fourd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/ferry-relay/ferry/targets"
)

// hasSession tells whether the connector holds session cookies.
func (c *Client) hasSession() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.cookies) > 0
}

// login opens a session with the configured credentials, unless another
// delivery did since the caller last sent: seen is the session generation
// the caller's refused request carried, or -1 to log in only when there is
// no session. Logins are serialized so that many deliveries finding their
// session expired at once log in only once.
func (c *Client) login(ctx context.Context, seen int) error { return c.loginFor(ctx, seen, false) }

// loginRefusalMemo is how long a refused login answers for the logins
// queued behind it, so that they do not each send the password again (an
// account may lock after a few failures). The target's pause and its
// probes take over after.
const loginRefusalMemo = 2 * time.Second

// loginFor is login; a probe always asks 4D.
func (c *Client) loginFor(ctx context.Context, seen int, probe bool) (err error) {
	c.loginMu.Lock()
	defer c.loginMu.Unlock()
	c.mu.Lock()
	done := seen >= 0 && c.gen != seen || seen < 0 && len(c.cookies) > 0
	refused, at := c.loginRefused, c.loginRefusedAt
	c.mu.Unlock()
	switch {
	case done:
		return nil
	case !probe && refused != nil && time.Since(at) < loginRefusalMemo:
		return refused
	}
	defer func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		switch {
		case targets.IsCredentials(err):
			c.loginRefused, c.loginRefusedAt = err, time.Now()
		case err == nil:
			c.loginRefused = nil
		}
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/$directory/login", http.NoBody)
	if err != nil {
		return targets.Permanent(fmt.Errorf("login: build request: %w", err))
	}
	req.Header.Set("username-4D", c.s.Username)
	req.Header.Set("password-4D", c.s.Password)
	resp, err := c.http.Do(req)
	if err != nil {
		return targets.TransportError(ctx, "login", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return refusal("login", resp)
	}
	var v struct {
		Result bool `json:"result"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxReplyBytes)).Decode(&v); err != nil {
		return fmt.Errorf("login: unreadable answer: %w", err)
	}
	if !v.Result {
		return targets.CredentialsRefused(errors.New(`login: 4D answered {"result":false}: check the target's username and password`))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cookies = map[string]*http.Cookie{}
	c.keepCookiesLocked(resp.Cookies())
	c.gen++
	return nil
}

// send sends the request newReq builds, with the session cookies, and
// keeps the cookies of the answer. When 4D answers 401 and the connector
// has credentials, it logs in again and sends a new request, once.
func (c *Client) send(ctx context.Context, step string, newReq func() (*http.Request, error)) (*http.Response, error) {
	for try := 0; ; try++ {
		req, err := newReq()
		if err != nil {
			return nil, err
		}
		c.mu.Lock()
		gen := c.gen
		for _, ck := range c.cookies {
			req.AddCookie(&http.Cookie{Name: ck.Name, Value: ck.Value})
		}
		c.mu.Unlock()
		resp, err := c.http.Do(req)
		if err != nil {
			return nil, targets.TransportError(ctx, step, err)
		}
		c.mu.Lock()
		c.keepCookiesLocked(resp.Cookies())
		c.mu.Unlock()
		if resp.StatusCode != http.StatusUnauthorized || c.s.Username == "" || try > 0 {
			return resp, nil
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxReplyBytes))
		resp.Body.Close()
		if err := c.login(ctx, gen); err != nil {
			return nil, err
		}
	}
}

// keepCookiesLocked merges cookies set by 4D into the session; c.mu is
// held.
func (c *Client) keepCookiesLocked(set []*http.Cookie) {
	now := c.now()
	for _, ck := range set {
		if ck.Value == "" || ck.MaxAge < 0 || !ck.Expires.IsZero() && ck.Expires.Before(now) {
			delete(c.cookies, ck.Name)
			continue
		}
		c.cookies[ck.Name] = ck
	}
}

// retryAfter is the wait 4D asked for, if any.
func retryAfter(resp *http.Response) time.Duration {
	return targets.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
}
