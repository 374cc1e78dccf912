package httptarget

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/ferry-relay/ferry/targets"
)

// Documents with versions (issue 21), versions: put. Each document has a
// URL of its own, the url template with {document} replaced by its key
// (path-escaped; a job without a document uses its job id). Every version
// is a PUT to it, conditional as RFC 9110 §13.1 defines: the first with
// If-None-Match: * (create, never replace a file ferry did not put), the
// next with If-Match: <the ETag the previous version's answer gave>. A 412
// means the target changed behind ferry's back: the job fails with
// "conflict: target changed since version n", unless on_conflict:
// overwrite, which sends the PUT (and the DELETE) without a condition.
// The answer's ETag and the URL are kept in Result.Remote (etag, url) for
// the next version.
//
// A lost answer: the PUT may have landed, and its repeat then meets a 412
// (the ETag moved). Before calling that a conflict, the connector asks the
// target what it holds (HEAD, with Want-Repr-Digest: RFC 9530): when its
// Repr-Digest (or, without one, the SHA-256 of a GET's body) is this
// version's, the version landed and the job succeeds with the ETag the
// target now gives; anything else is the conflict. A receiver that honours
// Idempotency-Key answers the repeat itself.
//
// A delete is a DELETE to the document's URL with If-Match; 404 or 410
// means it is gone already (an earlier attempt's answer was lost).

// Keys of Result.Remote with versions: put.
const (
	RemoteURL  = "url"
	RemoteETag = "etag"
)

// checkVersions checks versions and on_conflict, before defaults apply.
func (s Settings) checkVersions() error {
	hasDoc := strings.Contains(s.URL, "{document}")
	switch s.Versions {
	case "", targets.VersionsNone, targets.VersionsPost:
		if hasDoc {
			return fmt.Errorf("http: url %q holds {document}, which only versions: put fills", s.URL)
		}
	case targets.VersionsPut:
		if !hasDoc {
			return fmt.Errorf("http: versions: put needs {document} in url (such as https://dms/docs/{document}), the document's own URL")
		}
		if s.Method != "" && !strings.EqualFold(s.Method, http.MethodPut) {
			return fmt.Errorf("http: versions: put sends PUT: remove method: %s", s.Method)
		}
		if s.ProbeURL != "" {
			return errors.New("http: versions: put asks the document's own URL after a lost answer: remove probe_url")
		}
	default:
		return fmt.Errorf("http: versions must be none, put or post, not %q", s.Versions)
	}
	switch {
	case s.OnConflict != "" && s.OnConflict != targets.OnConflictFail && s.OnConflict != targets.OnConflictOverwrite:
		return fmt.Errorf("http: on_conflict must be fail or overwrite, not %q", s.OnConflict)
	case s.OnConflict != "" && s.Versions != targets.VersionsPut:
		return errors.New("http: on_conflict is for versions: put")
	}
	return nil
}

// Versions says what the target does with documents: versions: put
// updates and deletes the document at its URL; post sends every version
// to the url, for the receiver to version (X-Ferry-Document,
// X-Ferry-Version); none delivers each version as another file, as a job
// without a document.
func (c *Client) Versions() targets.VersionSupport {
	switch c.s.Versions {
	case targets.VersionsPut:
		return targets.VersionSupport{Update: true, Delete: true}
	case targets.VersionsPost:
		return targets.VersionSupport{Update: true}
	}
	return targets.VersionSupport{Append: true}
}

// documentURL is the document's own URL.
func (c *Client) documentURL(d *targets.Delivery) string {
	key := d.JobID
	if d.Document != nil {
		key = d.Document.Key
	}
	return strings.ReplaceAll(c.s.URL, "{document}", url.PathEscape(key))
}

// deliverPut puts the version to the document's URL, or deletes it.
func (c *Client) deliverPut(ctx context.Context, d *targets.Delivery) (targets.Result, error) {
	u := c.documentURL(d)
	if d.Document != nil && d.Document.Delete {
		return c.deleteDocument(ctx, d, u)
	}
	resp, err := c.send(ctx, d, http.MethodPut, u, c.preconditions(d, u))
	if err != nil {
		return targets.Result{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusPreconditionFailed {
		return c.afterConflict(ctx, d, u)
	}
	if err := answerError("put", resp); err != nil {
		return targets.Result{StatusCode: resp.StatusCode}, err
	}
	return putResult(d, u, resp.StatusCode, resp.Header.Get("ETag")), nil
}

func putResult(d *targets.Delivery, u string, status int, etag string) targets.Result {
	res := targets.Result{RemoteID: u, StatusCode: status}
	if d.Document != nil {
		res.Remote = map[string]string{RemoteURL: u, RemoteETag: etag}
	}
	return res
}

// preconditions are the conditional headers of a PUT or DELETE to u: none
// with on_conflict: overwrite; If-Match with the ETag recorded for u;
// If-None-Match: * for a document ferry has not put there yet; none when
// the target gave no ETag for the previous version.
func (c *Client) preconditions(d *targets.Delivery, u string) http.Header {
	h := http.Header{}
	doc := d.Document
	switch {
	case c.s.OnConflict == targets.OnConflictOverwrite:
	case doc == nil || doc.First() || doc.Remote[RemoteURL] != u:
		h.Set("If-None-Match", "*")
	case doc.Remote[RemoteETag] != "":
		h.Set("If-Match", doc.Remote[RemoteETag])
	}
	return h
}

// afterConflict decides what a 412 to this version's PUT means: the
// version landed already (an earlier attempt's answer was lost), or the
// target changed behind ferry's back.
func (c *Client) afterConflict(ctx context.Context, d *targets.Delivery, u string) (targets.Result, error) {
	etag, holds, err := c.holds(ctx, u, d.SHA256)
	if err != nil {
		return targets.Result{}, err
	}
	if holds {
		return putResult(d, u, http.StatusOK, etag), nil
	}
	return targets.Result{StatusCode: http.StatusPreconditionFailed}, &targets.Error{
		Err: conflict(d, u), Permanent: true, StatusCode: http.StatusPreconditionFailed,
	}
}

// conflict is the failure of a version whose target changed.
func conflict(d *targets.Delivery, u string) error {
	if d.Document == nil || d.Document.First() || d.Document.Remote[RemoteURL] != u {
		return fmt.Errorf("conflict: %s already holds a document that ferry did not put there (412 to If-None-Match: *); set on_conflict: overwrite to replace it", u)
	}
	return fmt.Errorf("conflict: target changed since version %d (412 to If-Match: %s); set on_conflict: overwrite to replace it", d.Document.Version-1, d.Document.Remote[RemoteETag])
}

// holds asks whether u holds the bytes of SHA-256 sum: from a HEAD's
// Repr-Digest (RFC 9530), or else by hashing a GET's body. It returns the
// ETag the target gives. A question it cannot answer is a retryable
// error: the next attempt asks again.
func (c *Client) holds(ctx context.Context, u, sum string) (string, bool, error) {
	resp, err := c.ask(ctx, http.MethodHead, u)
	if err != nil {
		return "", false, err
	}
	resp.Body.Close()
	if gone(resp.StatusCode) {
		return "", false, nil
	}
	if got, ok := reprDigest(resp.Header); ok && resp.StatusCode != http.StatusMethodNotAllowed {
		return resp.Header.Get("ETag"), got == sum, nil
	}
	if resp, err = c.ask(ctx, http.MethodGet, u); err != nil {
		return "", false, err
	}
	defer resp.Body.Close()
	if gone(resp.StatusCode) {
		return "", false, nil
	}
	h := sha256.New()
	if _, err := io.Copy(h, resp.Body); err != nil {
		return "", false, targets.TransportError(ctx, "read the document to compare it", err)
	}
	return resp.Header.Get("ETag"), hex.EncodeToString(h.Sum(nil)) == sum, nil
}

// ask sends a HEAD or GET to u with the target's headers: a 2xx, 404 or
// 410 answer (or 405 to a HEAD: then GET), or an error (retryable but for
// refused credentials).
func (c *Client) ask(ctx context.Context, method, u string) (*http.Response, error) {
	const what = "412: ask the target what it holds"
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return nil, targets.Permanent(fmt.Errorf("%s: %w", what, err))
	}
	req.Header.Set("Want-Repr-Digest", "sha-256=9")
	for k, v := range c.s.Headers {
		req.Header.Set(k, v)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, targets.TransportError(ctx, what, err)
	}
	ok := resp.StatusCode >= 200 && resp.StatusCode <= 299
	if ok || gone(resp.StatusCode) || method == http.MethodHead && resp.StatusCode == http.StatusMethodNotAllowed {
		return resp, nil
	}
	defer resp.Body.Close()
	err = answerError(what, resp)
	if targets.IsCredentials(err) {
		return nil, err
	}
	te := targets.Classify(err)
	return nil, &targets.Error{Err: err, RetryAfter: te.RetryAfter, StatusCode: te.StatusCode}
}

// gone reports whether status says no document is at the URL.
func gone(status int) bool { return status == http.StatusNotFound || status == http.StatusGone }

// reprDigest reads the sha-256 of a Repr-Digest field (RFC 9530 §3:
// sha-256=:<base64>:), as hex.
func reprDigest(h http.Header) (string, bool) {
	for _, field := range h.Values("Repr-Digest") {
		for _, item := range strings.Split(field, ",") {
			v, ok := strings.CutPrefix(strings.TrimSpace(item), "sha-256=")
			if !ok {
				continue
			}
			raw, err := base64.StdEncoding.DecodeString(strings.Trim(v, ":"))
			if err == nil && len(raw) == sha256.Size {
				return hex.EncodeToString(raw), true
			}
		}
	}
	return "", false
}

// deleteDocument sends DELETE to the document's URL, If-Match the ETag
// recorded. Gone already (404, 410) is success.
func (c *Client) deleteDocument(ctx context.Context, d *targets.Delivery, u string) (targets.Result, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, u, nil)
	if err != nil {
		return targets.Result{}, targets.Permanent(fmt.Errorf("delete: %w", err))
	}
	if etag := d.Document.Remote[RemoteETag]; etag != "" && c.s.OnConflict != targets.OnConflictOverwrite && d.Document.Remote[RemoteURL] == u {
		req.Header.Set("If-Match", etag)
	}
	req.Header.Set("X-Ferry-Job-Id", d.JobID)
	for k, v := range c.s.Headers {
		req.Header.Set(k, v)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return targets.Result{}, targets.TransportError(ctx, "delete", err)
	}
	defer resp.Body.Close()
	switch {
	case gone(resp.StatusCode):
	case resp.StatusCode == http.StatusPreconditionFailed:
		return targets.Result{StatusCode: resp.StatusCode}, &targets.Error{StatusCode: resp.StatusCode, Permanent: true,
			Err: fmt.Errorf("conflict: target changed since version %d, not deleting it (412 to If-Match); set on_conflict: overwrite to delete anyway", d.Document.Version-1)}
	default:
		if err := answerError("delete", resp); err != nil {
			return targets.Result{StatusCode: resp.StatusCode}, err
		}
	}
	return targets.Result{RemoteID: u, StatusCode: resp.StatusCode, Remote: map[string]string{RemoteURL: "", RemoteETag: ""}}, nil
}
