package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/ferry-relay/ferry/apitypes"
	"github.com/ferry-relay/ferry/internal/apikeys"
	"github.com/ferry-relay/ferry/jobs"
	"github.com/ferry-relay/ferry/storage"
	"github.com/ferry-relay/ferry/targets"
)

// An upload is a pipeline of named steps, each finished before the next
// begins:
//
//  1. resolve: the request's target, batch, parameters and (raw bodies)
//     declared size, validated once into one uploadRequest before any byte
//     of a file is read. A multipart body's fields must therefore come
//     before its first file part.
//  2. receive: each file streams into storage under a new job id, marked
//     as an upload in progress first so the orphan sweep leaves it alone.
//     Any read error of the body refuses the whole request.
//  3. record: every job of the request in one transaction, then the one
//     enqueue path publishes them. A failure before the commit leaves no
//     job and no object; after it, nothing is removed.

// Limits of one multipart upload request, so that no request costs the
// server more than its files' bytes (which go to storage as they come).
const (
	// maxFieldBytes bounds one plain form field.
	maxFieldBytes = 64 << 10
	// maxFields bounds the plain fields of one request.
	maxFields = 1000
	// maxFieldsBytes bounds all plain fields of one request together.
	maxFieldsBytes = 1 << 20
	// maxFiles bounds the files of one request.
	maxFiles = 100
)

// recordTimeout bounds the steps that run whatever the client does once
// its bytes are stored: recording the jobs, removing refused files.
const recordTimeout = 30 * time.Second

// keepAliveEvery is how often the markers of uploads in progress are
// renewed while their bytes flow.
const keepAliveEvery = time.Minute

// apiError is an error with its HTTP answer.
type apiError struct {
	status int
	code   string
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func badRequest(format string, a ...any) error {
	return &apiError{http.StatusBadRequest, "bad_request", fmt.Sprintf(format, a...)}
}

// upload is one file of an upload request, stored (or, for a repeated
// request, only hashed) and waiting for its job.
type upload struct {
	stored      storage.Stored
	id          string
	filename    string
	contentType string
}

// uploadForm is what an upload request says besides its files.
type uploadForm struct {
	// key is who uploads: its tenant owns the jobs and bounds the targets
	// and batches it may name.
	key    apikeys.Key
	target string
	batch  string
	params map[string]string
	// path is the client's path of the file (field "path"), kept for the
	// batch report.
	path string
	// batchParams are the defaults of the batch object named, once
	// applyBatch has looked it up.
	batchParams  map[string]string
	batchTarget  string
	batchApplied bool
}

func (f *uploadForm) set(name, value string) error {
	switch {
	case name == "target":
		f.target = value
	case name == "batch":
		f.batch = value
	case name == "path":
		p, err := cleanClientPath(value)
		if err != nil {
			return err
		}
		f.path = p
	case strings.HasPrefix(name, "param."):
		p := strings.TrimPrefix(name, "param.")
		if p == "" {
			return badRequest("empty parameter name in %q", name)
		}
		// Parameters are stored as JSON text: it holds neither NUL nor
		// bytes that are not UTF-8, and ferry does not alter them silently.
		if !utf8.ValidString(p) || !utf8.ValidString(value) || strings.ContainsRune(p+value, 0) {
			return badRequest("parameter %q: names and values must be UTF-8 without NUL", p)
		}
		f.params[p] = value
	}
	return nil
}

// uploadRequest is an upload request resolved before its files are read.
type uploadRequest struct {
	key    apikeys.Key
	idem   string
	form   uploadForm
	target *targets.Target
	params map[string]string
	// earlier is the first request's answer when the Idempotency-Key was
	// used before: the files are then only hashed, to compare.
	earlier []jobs.Job
	// earlierFingerprint is the first request's ("" for one recorded
	// before fingerprints were).
	earlierFingerprint string
}

// upload accepts files: multipart/form-data with "file" parts, or a raw
// body with its settings in the query string.
func (s *Server) upload(w http.ResponseWriter, r *http.Request, key apikeys.Key) {
	idem := r.Header.Get("Idempotency-Key")
	if len(idem) > 200 {
		writeError(w, http.StatusBadRequest, "bad_request", "Idempotency-Key is longer than 200 bytes")
		return
	}
	body := s.idleBody(w, r)
	rec := &receiver{s: s, ctx: r.Context()}
	defer rec.stop()
	var req *uploadRequest
	var err error
	mt, mparams, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt == "multipart/form-data" {
		req, err = s.receiveMultipart(r, body, mparams["boundary"], key, idem, rec)
	} else {
		req, err = s.receiveRaw(r, body, key, idem, rec)
	}
	body.done()
	var answer []jobs.Job
	created := false
	if err == nil {
		answer, created, err = s.record(r.Context(), req, rec)
	}
	if (err != nil && !errors.Is(err, jobs.ErrOutcomeUnknown)) || (err == nil && !created) {
		rec.discard()
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if !created {
		s.respondJobs(w, http.StatusOK, answer)
		return
	}
	if len(answer) == 1 {
		w.Header().Set("Location", "/v1/jobs/"+answer[0].ID)
	}
	s.respondJobs(w, http.StatusAccepted, answer)
}

// resolve is step 1: the request's target, batch and parameters, checked
// before a byte of a file is read.
func (s *Server) resolve(ctx context.Context, key apikeys.Key, idem string, form uploadForm, what string) (*uploadRequest, error) {
	if err := s.applyBatch(ctx, &form); err != nil {
		return nil, err
	}
	if form.target == "" {
		return nil, badRequest("missing target: %s", what)
	}
	t, err := s.target(key, form.target)
	if err != nil {
		return nil, err
	}
	req := &uploadRequest{key: key, idem: idem, form: form, target: t, params: form.merged(t)}
	if err := checkParams(t, req.params); err != nil {
		return nil, err
	}
	if idem != "" {
		fp, earlier, err := s.jobs.RequestByKey(ctx, key.Tenant, form.batch, key.ID, idem)
		switch {
		case err == nil:
			req.earlier, req.earlierFingerprint = earlier, fp
		case !errors.Is(err, jobs.ErrNotFound):
			return nil, err
		}
	}
	return req, nil
}

// checkDeclaredSize refuses a file whose announced size is over a limit,
// before its body is read.
func (s *Server) checkDeclaredSize(req *uploadRequest, filename string, size int64) error {
	if size < 0 {
		return nil
	}
	if size > s.cfg.MaxUploadBytes {
		return s.tooLarge(filename)
	}
	return checkSize(req.target, filename, size)
}

func (s *Server) tooLarge(filename string) error {
	return &apiError{http.StatusRequestEntityTooLarge, "too_large",
		fmt.Sprintf("file %q is over the limit of %d bytes", filename, s.cfg.MaxUploadBytes)}
}

// receiveMultipart reads the fields, resolves the request at the first
// file part, then streams each file part into storage as it arrives.
func (s *Server) receiveMultipart(r *http.Request, body io.Reader, boundary string, key apikeys.Key, idem string, rec *receiver) (*uploadRequest, error) {
	if boundary == "" {
		return nil, badRequest("malformed multipart body: no boundary in Content-Type")
	}
	closing := &closingWatcher{r: body, needle: []byte("--" + boundary + "--")}
	mr := multipart.NewReader(closing, boundary)
	form := uploadForm{key: key, params: map[string]string{}}
	var req *uploadRequest
	fields, fieldBytes, files := 0, 0, 0
	for {
		part, err := mr.NextPart()
		// Only a bare io.EOF is the closing boundary: a body that ends
		// without it yields an error that wraps io.EOF.
		if err == io.EOF { //nolint:errorlint // see above
			// And a body cut right after a delimiter line yields a bare
			// io.EOF too (reading the next part's headers): only a body
			// that held the closing delimiter is complete.
			if !closing.seen {
				return nil, badRequest("malformed multipart body: it ends without its closing boundary")
			}
			break
		}
		if err != nil {
			return nil, badRequest("malformed multipart body: %v", err)
		}
		isFile := partFilename(part) != "" || part.FormName() == "file"
		if !isFile {
			if req != nil {
				return nil, badRequest("field %q comes after a file: send target, batch, path and param.* fields before the first file", part.FormName())
			}
			if fields++; fields > maxFields {
				return nil, badRequest("more than %d form fields", maxFields)
			}
			v, err := io.ReadAll(io.LimitReader(part, maxFieldBytes+1))
			if err != nil {
				return nil, badRequest("reading field %s: %v", part.FormName(), err)
			}
			if len(v) > maxFieldBytes {
				return nil, badRequest("field %s is longer than %d bytes", part.FormName(), maxFieldBytes)
			}
			if fieldBytes += len(v); fieldBytes > maxFieldsBytes {
				return nil, badRequest("form fields hold more than %d bytes together", maxFieldsBytes)
			}
			if err := form.set(part.FormName(), string(v)); err != nil {
				return nil, err
			}
			continue
		}
		if part.FormName() != "file" {
			return nil, badRequest("file part named %q: files go in parts named \"file\"", part.FormName())
		}
		if files++; files > maxFiles {
			return nil, badRequest("more than %d files in one request: send them in several", maxFiles)
		}
		if req == nil {
			req, err = s.resolve(r.Context(), key, idem, form,
				"a file part came before the target field: send target (or batch), then param.* fields, then the files")
			if err != nil {
				return nil, err
			}
		} else if form.path != "" {
			return nil, badRequest("field path names one file: send one file per request with it")
		}
		name, err := cleanFilename(partFilename(part))
		if err != nil {
			return nil, err
		}
		if err := rec.receive(req, part, -1, name, contentType(part.Header.Get("Content-Type"), name)); err != nil {
			return nil, err
		}
	}
	if req == nil {
		return nil, badRequest("no file: send the file in a multipart part named \"file\"")
	}
	return req, nil
}

// closingWatcher notes whether the closing delimiter of a multipart body
// ("--boundary--") went by.
type closingWatcher struct {
	r      io.Reader
	needle []byte
	tail   []byte // the last len(needle)-1 bytes read, to match across reads
	seen   bool
}

func (c *closingWatcher) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 && !c.seen {
		// The needle may straddle the previous read and this one.
		edge := append(c.tail, p[:min(n, len(c.needle)-1)]...)
		c.seen = bytes.Contains(edge, c.needle) || bytes.Contains(p[:n], c.needle)
		keep := len(c.needle) - 1
		if n >= keep {
			c.tail = append(c.tail[:0], p[n-keep:n]...)
		} else {
			c.tail = append(c.tail[:0], edge[max(0, len(edge)-keep):]...)
		}
	}
	return n, err
}

// receiveRaw resolves a raw body's request from its query string, checks
// its declared size, then stores it.
func (s *Server) receiveRaw(r *http.Request, body io.Reader, key apikeys.Key, idem string, rec *receiver) (*uploadRequest, error) {
	q := r.URL.Query()
	form := uploadForm{key: key, params: map[string]string{}}
	for name, vs := range q {
		if err := form.set(name, vs[len(vs)-1]); err != nil {
			return nil, err
		}
	}
	req, err := s.resolve(r.Context(), key, idem, form, "name it in ?target= (or name a batch object in ?batch=)")
	if err != nil {
		return nil, err
	}
	name, err := cleanFilename(q.Get("filename"))
	if err != nil {
		return nil, err
	}
	if err := s.checkDeclaredSize(req, name, r.ContentLength); err != nil {
		return nil, err
	}
	ctype := q.Get("content_type")
	if ctype == "" {
		ctype = r.Header.Get("Content-Type")
	}
	if err := rec.receive(req, body, r.ContentLength, name, contentType(ctype, name)); err != nil {
		return nil, err
	}
	return req, nil
}

// receiver is step 2: it streams the files of one request into storage,
// each marked as an upload in progress until recorded or removed.
type receiver struct {
	s   *Server
	ctx context.Context

	ups []upload
	// keys are the objects stored for this request, removed if it is
	// refused.
	keys []string
	// markers are the keys marked as uploads in progress; shared with the
	// keep-alive.
	mu      sync.Mutex
	markers []string
	stopKA  chan struct{}
	kaDone  chan struct{}
}

// unmarkedMax is the largest file stored without an upload marker when
// its size is declared: storage reads a file this small into memory before
// its one PUT, so its object is recorded moments after it appears, and
// the orphan sweep only removes objects an hour old
// (sweeper.AbandonedUploadsAge; recordTimeout bounds the record). A marker
// would cost every small upload a Postgres write of its own, the most
// common upload paying for a risk only long ones run. Only a raw upload
// declares its size, and it is the request's one file: no other file can
// keep an unmarked object waiting for its record (the parts of a
// multipart body have unknown sizes, so each is marked).
const unmarkedMax = 1 << 20

// needsMarker says whether a file of declared size (-1: unknown) is marked
// before its first byte.
func needsMarker(size int64) bool { return size < 0 || size > unmarkedMax }

// mark writes the marker of key, the file about to be received.
func (rc *receiver) mark(key string) error {
	if err := rc.s.jobs.BeginUpload(rc.ctx, key); err != nil {
		return err
	}
	rc.mu.Lock()
	rc.markers = append(rc.markers, key)
	rc.mu.Unlock()
	rc.keepAlive()
	return nil
}

// receive stores one file, or only hashes it when the request repeats an
// earlier one (its files are already stored).
func (rc *receiver) receive(req *uploadRequest, body io.Reader, size int64, filename, ctype string) error {
	s := rc.s
	id := uuid.Must(uuid.NewV7()).String()
	key := storage.KeyFor(id)
	var st storage.Stored
	var err error
	if req.earlier != nil {
		st, err = hashOnly(body, size, s.cfg.MaxUploadBytes)
	} else {
		if needsMarker(size) {
			if err := rc.mark(key); err != nil {
				return err
			}
		}
		rc.keys = append(rc.keys, key)
		st, err = s.objects.Put(rc.ctx, key, body, size, s.cfg.MaxUploadBytes, ctype)
	}
	if errors.Is(err, storage.ErrTooLarge) {
		return s.tooLarge(filename)
	}
	if err != nil {
		if rc.ctx.Err() != nil {
			return badRequest("upload of %q interrupted: %v", filename, rc.ctx.Err())
		}
		if errors.Is(err, storage.ErrBody) {
			return badRequest("reading %q: %v", filename, err)
		}
		return fmt.Errorf("store %q: %w", filename, err)
	}
	rc.ups = append(rc.ups, upload{stored: st, id: id, filename: filename, contentType: ctype})
	if size >= 0 && st.Size != size {
		return badRequest("body of %q was %d bytes, Content-Length said %d", filename, st.Size, size)
	}
	if err := checkSize(req.target, filename, st.Size); err != nil {
		return err
	}
	if req.earlier == nil {
		uploadedBytes.Add(float64(st.Size))
	}
	return nil
}

// hashOnly reads a file of a repeated request to compare it with the
// first one's, storing nothing.
func hashOnly(body io.Reader, size, limit int64) (storage.Stored, error) {
	if size > limit {
		return storage.Stored{}, storage.ErrTooLarge
	}
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(body, limit+1))
	if err != nil {
		return storage.Stored{}, fmt.Errorf("%w: %w", storage.ErrBody, err)
	}
	if n > limit {
		return storage.Stored{}, storage.ErrTooLarge
	}
	return storage.Stored{Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// keepAlive renews the request's upload markers until stop.
func (rc *receiver) keepAlive() {
	if rc.stopKA != nil {
		return
	}
	rc.stopKA, rc.kaDone = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(rc.kaDone)
		t := time.NewTicker(keepAliveEvery)
		defer t.Stop()
		for {
			select {
			case <-rc.stopKA:
				return
			case <-t.C:
				rc.mu.Lock()
				keys := slices.Clone(rc.markers)
				rc.mu.Unlock()
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				if err := rc.s.jobs.KeepUploading(ctx, keys...); err != nil {
					rc.s.log.Warn("could not renew the markers of uploads in progress", "err", err)
				}
				cancel()
			}
		}
	}()
}

func (rc *receiver) stop() {
	if rc.stopKA != nil {
		close(rc.stopKA)
		<-rc.kaDone
		rc.stopKA = nil
	}
}

// discard removes the stored files of a refused or repeated request, then
// their markers (a file whose removal failed is the orphan sweep's).
func (rc *receiver) discard() {
	rc.stop()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(rc.ctx), recordTimeout)
	defer cancel()
	for _, key := range rc.keys {
		if err := rc.s.objects.Remove(ctx, key); err != nil {
			rc.s.log.Warn("could not remove the file of a refused upload", "key", key, "err", err)
		}
	}
	if len(rc.markers) > 0 {
		if err := rc.s.jobs.EndUpload(ctx, rc.markers...); err != nil {
			rc.s.log.Warn("could not remove the markers of a refused upload", "err", err)
		}
	}
}

// fingerprint sums up what a request asked for, to tell a repeat of it
// from another request with the same Idempotency-Key.
func fingerprint(req *uploadRequest, ups []upload) string {
	h := sha256.New()
	field := func(h hash.Hash, v string) { _, _ = fmt.Fprintf(h, "%d:%s;", len(v), v) }
	field(h, req.target.Name)
	field(h, req.form.batch)
	field(h, req.form.path)
	names := make([]string, 0, len(req.form.params))
	for k := range req.form.params {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		field(h, k)
		field(h, req.form.params[k])
	}
	for _, up := range ups {
		field(h, up.filename)
		field(h, strconv.FormatInt(up.stored.Size, 10))
		field(h, up.stored.SHA256)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// record is step 3: every job in one transaction, then published. It
// returns created=false with the first request's jobs for a repeat.
func (s *Server) record(ctx context.Context, req *uploadRequest, rec *receiver) ([]jobs.Job, bool, error) {
	fp := fingerprint(req, rec.ups)
	if req.earlier != nil {
		if (req.earlierFingerprint != "" && req.earlierFingerprint != fp) || len(req.earlier) != len(rec.ups) {
			return nil, false, keyReused(req.idem)
		}
		return req.earlier, false, nil
	}
	t := req.target
	r := jobs.Request{IdempotencyKey: req.idem, Fingerprint: fp, Tenant: req.key.Tenant, Batch: req.form.batch, APIKeyID: req.key.ID,
		Markers: rec.markers}
	for _, up := range rec.ups {
		r.Jobs = append(r.Jobs, jobs.New{ID: up.id, Tenant: req.key.Tenant, Target: t.Name, Batch: req.form.batch, Filename: up.filename,
			ContentType: up.contentType, Size: up.stored.Size, SHA256: up.stored.SHA256,
			ObjectKey: up.stored.Key, Params: req.params, MaxAttempts: t.MaxAttempts, APIKeyID: req.key.ID,
			ClientPath: req.form.path})
	}
	// The bytes are stored: record them even if the client went away.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	created, isNew, err := s.jobs.RecordRequest(rctx, r)
	if errors.Is(err, jobs.ErrKeyReused) {
		return nil, false, keyReused(req.idem)
	}
	if err != nil {
		return nil, false, err
	}
	if !isNew {
		return created, false, nil
	}
	rec.mu.Lock()
	// Recorded: nothing of this request is removed now.
	rec.keys, rec.markers = nil, nil
	rec.mu.Unlock()
	uploadedFiles.WithLabelValues(t.Name).Add(float64(len(created)))
	refs := make([]jobs.Ref, len(created))
	for i, j := range created {
		refs[i] = jobs.RefOf(j)
	}
	s.enqueue.EnqueueFresh(ctx, refs)
	return created, true, nil
}

func keyReused(key string) error {
	return &apiError{http.StatusConflict, "idempotency_key_reused",
		fmt.Sprintf("Idempotency-Key %q was used for another request (other files, target or fields); use a new key", key)}
}

// idleBody is a request body that is cut when the client sends nothing for
// the body idle timeout. It wraps r.Body without replacing it: net/http
// must still see its own body type to close, rather than drain, the
// connection of a request refused before its body was read.
type idleBody struct {
	r    io.Reader
	rc   *http.ResponseController
	idle time.Duration
}

func (s *Server) idleBody(w http.ResponseWriter, r *http.Request) *idleBody {
	return &idleBody{r: r.Body, rc: http.NewResponseController(w), idle: s.cfg.BodyIdleTimeout}
}

func (b *idleBody) Read(p []byte) (int, error) {
	if b.idle > 0 {
		_ = b.rc.SetReadDeadline(time.Now().Add(b.idle))
	}
	n, err := b.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) && b.idle > 0 && isTimeout(err) {
		err = fmt.Errorf("nothing received for %s: %w", b.idle, err)
	}
	return n, err
}

// done lifts the deadline once the body is read.
func (b *idleBody) done() {
	if b.idle > 0 {
		_ = b.rc.SetReadDeadline(time.Time{})
	}
}

func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}

// target returns the target name if key may use it. A target limited to
// other tenants is as unknown to key as one that does not exist.
func (s *Server) target(key apikeys.Key, name string) (*targets.Target, error) {
	t, ok := s.targets[name]
	if !ok || !usable(t, key) {
		var names []string
		for _, n := range s.targets.Names() {
			if usable(s.targets[n], key) {
				names = append(names, n)
			}
		}
		return nil, &apiError{http.StatusUnprocessableEntity, "unknown_target",
			fmt.Sprintf("unknown target %q (configured: %s)", name, strings.Join(names, ", "))}
	}
	return t, nil
}

// usable reports whether key may use t: t is open to its tenant, or key is
// an administrator's.
func usable(t *targets.Target, key apikeys.Key) bool {
	return key.Can(apikeys.PermAdmin) || t.AllowsTenant(key.Tenant)
}

// partFilename is the filename of a multipart part exactly as the client
// sent it (RFC 7578 §4.2, with RFC 2231 filename* decoded).
// multipart.Part.FileName would cut it to its last path element; ferry
// keeps it whole, since it never uses it as a path.
func partFilename(p *multipart.Part) string {
	_, params, err := mime.ParseMediaType(p.Header.Get("Content-Disposition"))
	if err != nil {
		return ""
	}
	return params["filename"]
}

// cleanFilename keeps the name as the user gave it but refuses what no
// target could take. The name is never used as a path by ferry.
func cleanFilename(name string) (string, error) {
	switch {
	case name == "":
		return "", badRequest("missing filename")
	case !utf8.ValidString(name):
		return "", badRequest("filename is not valid UTF-8")
	case len(name) > 1024:
		return "", badRequest("filename is longer than 1024 bytes")
	case strings.ContainsAny(name, "\x00\r\n"):
		return "", badRequest("filename contains a control character")
	}
	return name, nil
}

// cleanClientPath keeps the client's path of a file as given, refusing what
// cannot be shown in a report line. Like a filename, it is never used as a
// path by ferry.
func cleanClientPath(p string) (string, error) {
	switch {
	case !utf8.ValidString(p):
		return "", badRequest("path is not valid UTF-8")
	case len(p) > 4096:
		return "", badRequest("path is longer than 4096 bytes")
	case strings.ContainsAny(p, "\x00\r\n"):
		return "", badRequest("path contains a control character")
	}
	return p, nil
}

// contentType is the declared type, or the one the extension implies.
func contentType(declared, filename string) string {
	if mt, _, err := mime.ParseMediaType(declared); err == nil && mt != "application/octet-stream" {
		return declared
	}
	if t := mime.TypeByExtension(strings.ToLower(path.Ext(filename))); t != "" {
		return t
	}
	return "application/octet-stream"
}

func (s *Server) respondJobs(w http.ResponseWriter, code int, js []jobs.Job) {
	writeJSON(w, code, apitypes.UploadResult{Jobs: wireJobs(js)})
}
