package blueworks

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
	"time"

	"github.com/ferry-relay/ferry/targets"
)

// Token lifetimes. Blueworks Live answers expires_in=3600; the connector
// renews a token a minute before it ends, so an upload that starts just
// before the end does not race it, and on a 401 whatever the clock says.
const (
	// tokenTTLDefault is assumed when the token response has no
	// expires_in.
	tokenTTLDefault = time.Hour
	// renewMargin is how long before its end a token is renewed; a token
	// shorter than twice the margin is renewed half-way through instead.
	renewMargin = time.Minute
)

// tokenSource fetches OAuth2 client-credentials tokens and caches one.
// It is safe for concurrent use: one fetch at a time, and deliveries that
// wait for it give up when their context ends.
type tokenSource struct {
	http     *http.Client
	tokenURL string
	id       string
	secret   string
	now      func() time.Time

	// sem is held while reading or renewing the cached token.
	sem     chan struct{}
	token   string
	renewAt time.Time
}

func newTokenSource(hc *http.Client, tokenURL, id, secret string) *tokenSource {
	return &tokenSource{
		http: hc, tokenURL: tokenURL, id: id, secret: secret,
		now: time.Now, sem: make(chan struct{}, 1),
	}
}

// Token returns a bearer token other than rejected: the cached one while it
// is fresh, else a new one. A caller whose token drew a 401 passes it as
// rejected; if another delivery already renewed it, the new one is reused.
func (ts *tokenSource) Token(ctx context.Context, rejected string) (string, error) {
	select {
	case ts.sem <- struct{}{}:
	case <-ctx.Done():
		return "", fmt.Errorf("token: %w", ctx.Err())
	}
	defer func() { <-ts.sem }()

	if ts.token != "" && ts.token != rejected && ts.now().Before(ts.renewAt) {
		return ts.token, nil
	}
	ts.token = ""
	tok, ttl, err := ts.fetch(ctx)
	if err != nil {
		return "", err
	}
	margin := renewMargin
	if ttl < 2*renewMargin {
		margin = ttl / 2
	}
	ts.token, ts.renewAt = tok, ts.now().Add(ttl-margin)
	return tok, nil
}

// current returns the cached token, or "".
func (ts *tokenSource) current() string {
	ts.sem <- struct{}{}
	defer func() { <-ts.sem }()
	return ts.token
}

// tokenResponse is the OAuth2 token response. expires_in is a number in
// RFC 6749; some servers quote it, so both are read.
type tokenResponse struct {
	AccessToken string          `json:"access_token"`
	TokenType   string          `json:"token_type"`
	ExpiresIn   json.RawMessage `json:"expires_in"`
}

func (ts *tokenSource) fetch(ctx context.Context) (string, time.Duration, error) {
	form := url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {ts.id},
		"client_secret": {ts.secret},
	}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ts.tokenURL, strings.NewReader(form))
	if err != nil {
		return "", 0, targets.Permanent(fmt.Errorf("token: build request: %w", err))
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := ts.http.Do(req)
	if err != nil {
		// The secret travels in the body, never the URL, so the
		// *url.Error here holds nothing to redact.
		return "", 0, targets.TransportError(ctx, "token", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		// 400 (invalid_client) and 401 refuse the client credentials:
		// the target pauses until they work again. 429 and 5xx are
		// retryable.
		err := targets.StatusError("token", resp)
		if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusBadRequest && strings.Contains(err.Error(), "invalid_client") {
			return "", 0, targets.CredentialsRefused(err)
		}
		return "", 0, err
	}
	var tr tokenResponse
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&tr); err != nil {
		return "", 0, fmt.Errorf("token: read response: %w", err)
	}
	if tr.AccessToken == "" {
		return "", 0, errors.New("token: response has no access_token")
	}
	if tr.TokenType != "" && !strings.EqualFold(tr.TokenType, "bearer") {
		return "", 0, targets.Permanent(fmt.Errorf("token: token_type %q, want bearer", tr.TokenType))
	}
	return tr.AccessToken, expiresIn(tr.ExpiresIn), nil
}

// expiresIn reads expires_in as seconds, given as a number or a string,
// defaulting to an hour when absent or unreadable.
func expiresIn(raw json.RawMessage) time.Duration {
	s := strings.Trim(string(raw), `"`)
	secs, err := strconv.ParseFloat(s, 64)
	if err != nil || secs <= 0 {
		return tokenTTLDefault
	}
	return time.Duration(secs * float64(time.Second))
}
