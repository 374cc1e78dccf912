// Package fourd is the connector of kind "4d": it puts a file into a BLOB
// or picture attribute of an entity of a 4D application, through 4D's REST
// server, in two steps:
//
//  1. POST {url}/rest/$upload?$binary=true (or $rawPict=true for an image/*
//     file) with the raw bytes; 4D keeps them for $timeout seconds (120 by
//     default) and answers {"ID":"D507BC..."}.
//  2. POST {url}/rest/{Dataclass}?$method=update with
//     {"__KEY":"<key>","__STAMP":<stamp>,"<attribute>":{"ID":"<that ID>"}};
//     4D saves the entity and answers it with its new __STAMP.
//
// The upload ID and when it was taken are saved in the checkpoint, so a
// failed update is retried without sending the bytes again, unless the ID
// has expired by then (or 4D says it no longer knows it), in which case the
// file is uploaded again.
//
// __STAMP is 4D's optimistic lock. When the job gives none (param.stamp),
// the connector reads the entity first (GET {url}/rest/{Dataclass}({key})),
// which also tells early that the key does not exist, before any bytes are
// sent. When 4D refuses the stamp as stale ("Stamp has changed", errCode
// 1263) because someone else saved the entity in between, the connector
// takes the current stamp from the answer (or reads the entity) and tries
// again, a few times: the update only sets the file's attribute, so it
// overwrites nothing the other writer did.
//
// With a username, the connector logs in with POST
// {url}/rest/$directory/login (headers username-4D and password-4D), keeps
// the session cookies 4D sets (4DSID_<app> or WASID4D) for every request,
// and logs in again once when a request is answered 401. Without one it
// sends no credentials, for a 4D server whose REST access is open, and
// still keeps the session cookie so that it does not use a new 4D license
// per request.
//
// The result's remote id is "Dataclass(key)/attribute": the REST path of
// the attribute holding the file under {url}/rest/. The entity alone would
// not tell which of its attributes got the file.
package fourd

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ferry-relay/ferry/targets"
)

// Defaults of Settings.
const (
	// UploadTimeoutDefault is how long 4D keeps an upload when the request
	// sets no $timeout.
	UploadTimeoutDefault = 120 * time.Second
	// MaxFileBytesDefault is 4D's default "Maximum request size" of its
	// web server, 2,000,000 KB.
	MaxFileBytesDefault = 2_000_000 * 1024
	// StampRetriesDefault is how many times an update refused for a stale
	// __STAMP is tried again within one attempt.
	StampRetriesDefault = 3
)

// Checkpoint keys.
const (
	// CheckpointUploadID is the ID $upload answered.
	CheckpointUploadID = "upload_id"
	// CheckpointUploadedAt is when the upload finished, RFC 3339 UTC.
	CheckpointUploadedAt = "uploaded_at"
	// CheckpointUploadTimeout is the ID's life in seconds.
	CheckpointUploadTimeout = "upload_timeout"
	// CheckpointUpdateStamp is the __STAMP the last $method=update sent,
	// saved before sending it.
	CheckpointUpdateStamp = "update_stamp"
)

// Settings are the kind's own settings in the targets file.
type Settings struct {
	// URL is the 4D web server, such as https://4d.example.com:8443;
	// requests go to {base_url}/rest/...
	URL string `yaml:"base_url"`
	// Dataclass is the default dataclass (param.dataclass overrides it).
	Dataclass string `yaml:"dataclass"`
	// Attribute is the default BLOB or picture attribute receiving the
	// file (param.attribute overrides it).
	Attribute string `yaml:"attribute"`
	// NameAttribute, when set, is a text attribute that receives the
	// file's name in the same update (param.nameAttribute overrides it):
	// 4D keeps no name with a BLOB.
	NameAttribute string `yaml:"name_attribute"`
	// Username and Password open a 4D REST session; leave them empty for
	// a server whose REST access needs no login.
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// UploadTimeout is sent as $timeout: how long 4D keeps an upload
	// before it is attached (default: not sent, 4D keeps it 120 s).
	UploadTimeout time.Duration `yaml:"upload_timeout"`
	// MaxFileBytes is the largest file the 4D server accepts, its
	// "Maximum request size" (default MaxFileBytesDefault).
	MaxFileBytes int64 `yaml:"max_file_bytes"`
	// StampRetries is how many times an update refused for a stale
	// __STAMP is tried again (default StampRetriesDefault; -1 for none).
	StampRetries int `yaml:"stamp_retries"`
}

// Client delivers files to one 4D server.
type Client struct {
	s    Settings
	base string // {url}/rest
	http *http.Client
	now  func() time.Time

	loginMu sync.Mutex              // serializes logins
	mu      sync.Mutex              // guards cookies and gen
	cookies map[string]*http.Cookie // the session, by cookie name
	gen     int                     // bumped by every login

	loginRefused   error // the last refused login, answered for a moment
	loginRefusedAt time.Time
}

var (
	_ targets.Deliverer    = (*Client)(nil)
	_ targets.ParamChecker = (*Client)(nil)
	_ targets.SizeLimiter  = (*Client)(nil)

	_ targets.CredentialProber = (*Client)(nil)
)

// New builds the connector from its target configuration.
func New(cfg targets.Config) (targets.Deliverer, error) {
	var s Settings
	if err := cfg.Settings(&s); err != nil {
		return nil, err
	}
	// The kind versions documents its system's own way: no versions or
	// on_conflict setting.
	if _, err := cfg.VersionsFor(); err != nil {
		return nil, err
	}
	return NewClient(s, targets.HTTPClient(cfg))
}

// nameRE is what the connector accepts as a dataclass or attribute name:
// 4D's exposed names follow the rules of object property names.
var nameRE = regexp.MustCompile(`^[\p{L}_$][\p{L}\p{N}_$]*$`)

// NewClient builds the connector from settings and an HTTP client.
func NewClient(s Settings, hc *http.Client) (*Client, error) {
	s.URL = strings.TrimRight(s.URL, "/")
	if s.MaxFileBytes == 0 {
		s.MaxFileBytes = MaxFileBytesDefault
	}
	if s.StampRetries == 0 {
		s.StampRetries = StampRetriesDefault
	}
	switch {
	case s.URL == "":
		return nil, fmt.Errorf("4d: base_url is required")
	case !strings.HasPrefix(s.URL, "http://") && !strings.HasPrefix(s.URL, "https://"):
		return nil, fmt.Errorf("4d: url %q must start with http:// or https://", s.URL)
	case s.Password != "" && s.Username == "":
		return nil, fmt.Errorf("4d: password given without username")
	case s.UploadTimeout < 0 || s.UploadTimeout%time.Second != 0:
		return nil, fmt.Errorf("4d: upload_timeout must be a positive whole number of seconds")
	case s.MaxFileBytes < 0:
		return nil, fmt.Errorf("4d: max_file_bytes must be positive")
	case s.StampRetries < -1:
		return nil, fmt.Errorf("4d: stamp_retries must be -1 (none) or more")
	}
	for setting, v := range map[string]string{"dataclass": s.Dataclass, "attribute": s.Attribute, "name_attribute": s.NameAttribute} {
		if v != "" && !nameRE.MatchString(v) {
			return nil, fmt.Errorf("4d: %s %q is not a 4D name", setting, v)
		}
	}
	return &Client{s: s, base: s.URL + "/rest", http: hc, now: time.Now, cookies: map[string]*http.Cookie{}}, nil
}

// MaxFileBytes is the 4D server's maximum request size.
func (c *Client) MaxFileBytes() int64 { return c.s.MaxFileBytes }

// CheckParams tells whether a job's parameters name an entity and an
// attribute: param.key, and param.dataclass and param.attribute unless the
// settings give them.
func (c *Client) CheckParams(params map[string]string) error {
	_, err := c.jobFor(params)
	return err
}

// job is where one file goes.
type job struct {
	dataclass, key, attribute, nameAttribute string
	// stamp is param.stamp, -1 when the job gives none.
	stamp int64
}

func (j job) remoteID() string { return j.dataclass + "(" + j.key + ")/" + j.attribute }

func (c *Client) jobFor(params map[string]string) (job, error) {
	j := job{
		dataclass:     or(params["dataclass"], c.s.Dataclass),
		key:           params["key"],
		attribute:     or(params["attribute"], c.s.Attribute),
		nameAttribute: or(params["nameAttribute"], c.s.NameAttribute),
		stamp:         -1,
	}
	switch {
	case j.key == "":
		return j, fmt.Errorf("missing param.key (the entity's primary key)")
	case strings.ContainsAny(j.key, "()/"):
		return j, fmt.Errorf("param.key %q: 4D keys in a REST path cannot hold '(', ')' or '/'", j.key)
	case j.dataclass == "":
		return j, fmt.Errorf("missing param.dataclass (no dataclass in the target's settings either)")
	case j.attribute == "":
		return j, fmt.Errorf("missing param.attribute (no attribute in the target's settings either)")
	}
	for param, v := range map[string]string{"dataclass": j.dataclass, "attribute": j.attribute, "nameAttribute": j.nameAttribute} {
		if v != "" && !nameRE.MatchString(v) {
			return j, fmt.Errorf("param.%s %q is not a 4D name", param, v)
		}
	}
	if v := params["stamp"]; v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return j, fmt.Errorf("param.stamp %q must be a whole number (the entity's __STAMP)", v)
		}
		j.stamp = n
	}
	return j, nil
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// Deliver uploads the file, unless an earlier attempt did and its ID is
// still good, and attaches it to the entity. A version of a document is
// delivered the same way (document.go): it overwrites the attribute.
func (c *Client) Deliver(ctx context.Context, d *targets.Delivery) (targets.Result, error) {
	j, err := c.jobFor(d.Params)
	if err != nil {
		return targets.Result{}, targets.Permanent(fmt.Errorf("4d: %w", err))
	}
	if d.Document != nil && d.Document.Delete {
		return targets.Result{}, targets.Permanent(errors.New("4d: 4D's REST API documents no delete of a file: a document cannot be deleted"))
	}
	if c.s.Username != "" && !c.hasSession() {
		if err := c.login(ctx, -1); err != nil {
			return targets.Result{}, err
		}
	}
	stamp, landed, err := c.startStamp(ctx, d, j)
	if err != nil {
		return targets.Result{}, err
	}
	if landed {
		return c.result(d, j, http.StatusOK, stamp), nil
	}
	id := c.savedUpload(d.Checkpoint)
	if id == "" {
		if id, err = c.uploadAndSave(ctx, d); err != nil {
			return targets.Result{}, err
		}
	}
	reuploaded := false
	for tries := 0; ; tries++ {
		// Record the stamp sent before sending: if the answer is lost,
		// the next attempt sees whether the entity moved past it.
		if err := d.Save(ctx, targets.Checkpoint{CheckpointUpdateStamp: strconv.FormatInt(stamp, 10)}); err != nil {
			return targets.Result{}, fmt.Errorf("save checkpoint: %w", err)
		}
		status, saved, err := c.update(ctx, j, stamp, id, d.Filename)
		var stale *staleStampError
		switch {
		case err == nil:
			return c.result(d, j, status, saved), nil
		case errors.As(err, &stale) && tries < c.s.StampRetries:
			if stamp = stale.current; stamp < 0 {
				if stamp, err = c.readStamp(ctx, j); err != nil {
					return targets.Result{}, err
				}
			}
		case isUploadGone(err) && !reuploaded:
			reuploaded = true
			if id, err = c.uploadAndSave(ctx, d); err != nil {
				return targets.Result{}, err
			}
		case isUploadGone(err):
			// Gone again at once: forget it, so the next attempt starts
			// afresh, and let the worker's backoff decide.
			if serr := d.Save(ctx, clearedUpload()); serr != nil {
				return targets.Result{}, fmt.Errorf("save checkpoint: %w", serr)
			}
			return targets.Result{}, err
		default:
			return targets.Result{}, err
		}
	}
}

// startStamp returns the __STAMP to send the update with: when an earlier
// attempt sent one and heard nothing definite, it reads the entity and
// decides from what it holds (landed: the update is done, and the stamp is
// the entity's); otherwise param.stamp, or the stamp a document's last
// version left (Remote), or else the entity's, read.
func (c *Client) startStamp(ctx context.Context, d *targets.Delivery, j job) (int64, bool, error) {
	if sent := d.Checkpoint[CheckpointUpdateStamp]; sent != "" {
		e, err := c.readEntity(ctx, j)
		switch {
		case targets.IsPermanent(err):
			// 4D says the entity (or its dataclass) is not there
			// to hold the file: no attempt can deliver it.
			return 0, false, fmt.Errorf("4d: the entity an earlier attempt updated is not there: %w", err)
		case err != nil:
			return 0, false, fmt.Errorf("cannot tell whether an earlier attempt's update landed: %w", err)
		}
		return e.stamp, c.updateLanded(e, j, sent, d.Filename), nil
	}
	if j.stamp >= 0 {
		return j.stamp, false, nil
	}
	if stamp, ok := rememberedStamp(d, j); ok {
		return stamp, false, nil
	}
	stamp, err := c.readStamp(ctx, j)
	return stamp, false, err
}

// updateLanded decides from the entity as read whether the update sent
// with __STAMP sent landed: the stamp moved past it and the attribute holds
// a file (and, with a name attribute, the file's name). A save by someone
// else moves the stamp too, but leaves the attribute as it was: when the
// attribute held a file before the update, only the name attribute tells
// the two apart; without one the connector takes the moved stamp and the
// bound attribute as the update's (README, kind 4d).
func (c *Client) updateLanded(e entity, j job, sent, filename string) bool {
	n, err := strconv.ParseInt(sent, 10, 64)
	if err != nil || e.stamp <= n || !e.bound[j.attribute] {
		return false
	}
	return j.nameAttribute == "" || e.texts[j.nameAttribute] == filename
}

// ProbeCredentials logs in anew, when the target has a username.
func (c *Client) ProbeCredentials(ctx context.Context) error {
	if c.s.Username == "" {
		return nil
	}
	c.mu.Lock()
	gen := c.gen
	c.mu.Unlock()
	return c.loginFor(ctx, gen, true)
}

// savedUpload returns the checkpoint's upload ID while it is still good,
// with a margin of a tenth of its life for the update to reach 4D.
func (c *Client) savedUpload(cp targets.Checkpoint) string {
	id := cp[CheckpointUploadID]
	at, err := time.Parse(time.RFC3339Nano, cp[CheckpointUploadedAt])
	secs, serr := strconv.Atoi(cp[CheckpointUploadTimeout])
	if id == "" || err != nil || serr != nil {
		return ""
	}
	life := time.Duration(secs) * time.Second
	if c.now().Sub(at) >= life-life/10 {
		return ""
	}
	return id
}

// uploadAndSave uploads the file and saves its ID in the checkpoint
// before it is used.
func (c *Client) uploadAndSave(ctx context.Context, d *targets.Delivery) (string, error) {
	id, err := c.upload(ctx, d)
	if err != nil {
		return "", err
	}
	life := c.s.UploadTimeout
	if life == 0 {
		life = UploadTimeoutDefault
	}
	cp := targets.Checkpoint{
		CheckpointUploadID:      id,
		CheckpointUploadedAt:    c.now().UTC().Format(time.RFC3339Nano),
		CheckpointUploadTimeout: strconv.Itoa(int(life / time.Second)),
	}
	if err := d.Save(ctx, cp); err != nil {
		return "", fmt.Errorf("save checkpoint: %w", err)
	}
	return id, nil
}

func clearedUpload() targets.Checkpoint {
	return targets.Checkpoint{CheckpointUploadID: "", CheckpointUploadedAt: "", CheckpointUploadTimeout: ""}
}
