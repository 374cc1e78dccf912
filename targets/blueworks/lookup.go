package blueworks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ferry-relay/ferry/targets"
)

// A FileUpload whose answer was lost (the connection closed, a gateway
// answered 5xx, the answer was not FileUpload's, or the attempt timed out)
// may have landed. Before sending it again the connector asks ListFiles
// (GET {base}/scr/api/ListFiles?from=<date>, Blueworks Live REST API
// reference, "ListFiles", linked from its "Attachments" page) for the files
// uploaded since a little before the lost upload was sent, and adopts the
// one that matches the job: same location, parent and ancestor ids, name
// and size, uploaded after the send. Found: the job succeeds with that
// file's id, nothing is sent again. Not there: the upload is sent again,
// and Blueworks cannot end up with two copies.
//
// ListFiles answers only an account administrator ("The user must be an
// administrator to access the ListFiles API"; a User Service ID with the
// Artifact Reporting category). With other credentials it answers 401 or
// 403, and the connector keeps the documented behaviour: it uploads again
// and marks the attempt uncertain (Delivery.MarkUncertain), since
// Blueworks may then hold the file twice. It does the same when ListFiles
// gives an answer it cannot use (404, another 4xx, a body it cannot read).
// A lookup that fails for a while (5xx, 429, a dropped connection) ends the
// attempt, retryably, without sending anything: the next attempt asks
// again.
//
// Limits: Blueworks gives no checksum, so a file of another job with the
// same name and size, put on the same item around the time this job's
// upload was sent (lookupSlack either side), is indistinguishable from
// this job's. The connector never adopts a file whose id it has already
// reported for another delivery (of this target, in this process), and
// when several files match it adopts the earliest and marks the attempt
// uncertain.

// Lookup tuning.
const (
	// lookupSlack widens the window a lost upload is looked for in, for
	// the clocks of ferry and Blueworks not agreeing.
	lookupSlack = time.Minute
	// lookupRefusalMemo is how long a ListFiles refused for want of an
	// administrator is not asked again: the credentials will not change
	// meanwhile.
	lookupRefusalMemo = 5 * time.Minute
	// maxListBytes bounds what is read of a ListFiles answer: file
	// metadata since a few minutes before one upload.
	maxListBytes = 16 << 20
	// rememberIDs is how many reported attachment ids are kept to avoid
	// adopting another job's file.
	rememberIDs = 4096
)

// dateLayout is ListFiles' long form, 2012-08-13T15:44:31.571-05:00.
const dateLayout = "2006-01-02T15:04:05.000-07:00"

// errNoLookup is a ListFiles that cannot answer the question: refused for
// want of an administrator, or an answer the connector cannot use.
var errNoLookup = errors.New("ListFiles cannot tell")

// Reasons given to Delivery.MarkUncertain.
const (
	uncertainNoLookup  = "FileUpload repeated after an answer that was lost or a 5xx, and ListFiles could not be asked (it needs an administrator): Blueworks may hold the file twice"
	uncertainAmbiguous = "several files on the item match the lost FileUpload (name, size, time): the earliest was taken as this job's"
)

// recovery is what the lookup decided about an earlier, unanswered upload.
type recovery struct {
	res    targets.Result // the adopted file, when done
	done   bool           // the job is delivered (or the attempt ends with err)
	err    error
	resend bool // send the upload again
}

// recoverLost decides, from ListFiles, what to do about the upload an
// earlier attempt sent at the time sent records.
func (c *Client) recoverLost(ctx context.Context, d *targets.Delivery, up uploadForm, sent string) recovery {
	at, err := time.Parse(time.RFC3339Nano, sent)
	if err != nil {
		// A checkpoint written before the lookup existed holds no time.
		d.MarkUncertain(uncertainNoLookup)
		return recovery{resend: true}
	}
	found, n, err := c.findUpload(ctx, d, up, at)
	switch {
	case errors.Is(err, errNoLookup):
		d.MarkUncertain(uncertainNoLookup)
		return recovery{resend: true}
	case err != nil:
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return recovery{done: true, err: fmt.Errorf("blueworks: %w", err)}
		}
		te := targets.Classify(err)
		cp := *te
		cp.Err = fmt.Errorf("blueworks: cannot tell whether an earlier FileUpload landed: %w", err)
		return recovery{done: true, err: &cp}
	case found == nil:
		return recovery{resend: true}
	}
	if n > 1 {
		d.MarkUncertain(uncertainAmbiguous)
	}
	if err := d.Save(ctx, targets.Checkpoint{CheckpointSent: ""}); err != nil {
		return recovery{done: true, err: fmt.Errorf("blueworks: save checkpoint: %w", err)}
	}
	c.reported.add(found.ID)
	return recovery{done: true, res: targets.Result{RemoteID: found.ID, StatusCode: http.StatusOK}}
}

// uploadForm is where a file goes: the FileUpload form fields.
type uploadForm struct{ location, ancestor, parent string }

// listedFile is one file as ListFiles shows it. The fields are those of
// FileUpload's answer, strings there; numbers are read as well.
type listedFile struct {
	ID         string    `json:"id"`
	FileItemID string    `json:"fileItemId"`
	Name       string    `json:"name"`
	Size       flexFloat `json:"size"`
	ParentID   string    `json:"parentId"`
	AncestorID string    `json:"ancestorId"`
	Location   string    `json:"location"`
	UploadDate flexFloat `json:"uploadDate"` // epoch milliseconds
}

// findUpload looks the delivery's file up with ListFiles. It returns the
// earliest match and how many files matched; nil when none did.
func (c *Client) findUpload(ctx context.Context, d *targets.Delivery, up uploadForm, sent time.Time) (*listedFile, int, error) {
	if c.lookupRefused() {
		return nil, 0, fmt.Errorf("%w: refused a moment ago", errNoLookup)
	}
	raw, err := c.listFiles(ctx, sent.Add(-lookupSlack))
	if err != nil {
		return nil, 0, err
	}
	files, err := decodeFiles(raw)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: unreadable answer: %w", errNoLookup, err)
	}
	var best *listedFile
	n := 0
	from, until := sent.Add(-lookupSlack).UnixMilli(), c.now().Add(lookupSlack).UnixMilli()
	for i := range files {
		f := &files[i]
		at := int64(f.UploadDate)
		if f.Name != d.Filename || int64(f.Size) != d.Size || f.Location != up.location ||
			f.ParentID != up.parent || f.AncestorID != up.ancestor || at < from || at > until ||
			f.ID == "" || c.reported.has(f.ID) {
			continue
		}
		n++
		if best == nil || at < int64(best.UploadDate) {
			best = f
		}
	}
	return best, n, nil
}

// listFiles asks ListFiles for the files uploaded after from, renewing
// the token once on a 401. It returns the answer's body.
func (c *Client) listFiles(ctx context.Context, from time.Time) ([]byte, error) {
	u := c.listURL + "?from=" + url.QueryEscape(from.Format(dateLayout))
	rejected := ""
	for {
		tok, err := c.tokens.Token(ctx, rejected)
		if err != nil {
			return nil, err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, targets.Permanent(fmt.Errorf("ListFiles: build request: %w", err))
		}
		req.Header.Set("Accept", "application/json")
		req.Header.Set("Authorization", "Bearer "+tok)
		if c.s.OnBehalfOf != "" {
			req.Header.Set("X-On-Behalf-Of", c.s.OnBehalfOf)
		}
		resp, err := c.http.Do(req)
		if err != nil {
			return nil, targets.TransportError(ctx, "ListFiles", err)
		}
		raw, rerr := readList(resp)
		switch code := resp.StatusCode; {
		case code == http.StatusUnauthorized && rejected == "":
			rejected = tok // expired or revoked: renew once
			continue
		case code == http.StatusUnauthorized, code == http.StatusForbidden:
			c.refuseLookup()
			return nil, fmt.Errorf("%w: HTTP %d, ListFiles needs an administrator's credentials", errNoLookup, code)
		case code == http.StatusRequestTimeout, code == http.StatusTooManyRequests, code >= 500:
			resp.Body = io.NopCloser(bytes.NewReader(raw))
			return nil, targets.StatusError("ListFiles", resp)
		case code < 200 || code > 299:
			return nil, fmt.Errorf("%w: HTTP %d", errNoLookup, code)
		case rerr != nil:
			return nil, targets.TransportError(ctx, "ListFiles: read answer", rerr)
		}
		return raw, nil
	}
}

// readList reads and closes the answer's body, at most maxListBytes+1.
func readList(resp *http.Response) ([]byte, error) {
	defer resp.Body.Close()
	return io.ReadAll(io.LimitReader(resp.Body, maxListBytes+1))
}

// decodeFiles reads ListFiles' answer: an array of files, or an object
// holding one (the reference page shows no example answer).
func decodeFiles(raw []byte) ([]listedFile, error) {
	if len(raw) > maxListBytes {
		return nil, fmt.Errorf("over %d bytes", maxListBytes)
	}
	raw = bytes.TrimSpace(raw)
	var files []listedFile
	if len(raw) > 0 && raw[0] == '[' {
		err := json.Unmarshal(raw, &files)
		return files, err
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, err
	}
	for _, v := range obj {
		if v = bytes.TrimSpace(v); len(v) > 0 && v[0] == '[' {
			if err := json.Unmarshal(v, &files); err == nil {
				return files, nil
			}
		}
	}
	return nil, errors.New("no list of files in the answer")
}

// flexFloat reads a JSON number or a string holding one ("3.0",
// "1441217698308"), as FileUpload's answer gives them.
type flexFloat float64

// UnmarshalJSON reads a number or a numeric string; anything else is -1.
func (f *flexFloat) UnmarshalJSON(b []byte) error {
	s := strings.Trim(strings.TrimSpace(string(b)), `"`)
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		v = -1
	}
	*f = flexFloat(v)
	return nil
}

// lookupRefused tells whether ListFiles was refused for want of an
// administrator less than lookupRefusalMemo ago.
func (c *Client) lookupRefused() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.listRefusedAt.IsZero() && c.now().Sub(c.listRefusedAt) < lookupRefusalMemo
}

func (c *Client) refuseLookup() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.listRefusedAt = c.now()
}

// idSet is a bounded set of attachment ids, forgetting the oldest.
type idSet struct {
	mu    sync.Mutex
	ids   map[string]bool
	order []string
}

func (s *idSet) add(id string) {
	if id == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ids == nil {
		s.ids = map[string]bool{}
	}
	if s.ids[id] {
		return
	}
	if len(s.order) >= rememberIDs {
		delete(s.ids, s.order[0])
		s.order = s.order[1:]
	}
	s.ids[id] = true
	s.order = append(s.order, id)
}

func (s *idSet) has(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ids[id]
}
