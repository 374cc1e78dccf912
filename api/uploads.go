package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/ferry-relay/ferry/apikeys"
	"github.com/ferry-relay/ferry/apitypes"
	"github.com/ferry-relay/ferry/jobs"
	"github.com/ferry-relay/ferry/storage"
	"github.com/ferry-relay/ferry/targets"
)

// maxFieldBytes bounds one plain form field of an upload.
const maxFieldBytes = 64 << 10

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

// upload is one file of an upload request, stored and waiting for its job.
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
		f.params[p] = value
	}
	return nil
}

// upload accepts files: multipart/form-data with "file" parts, or a raw
// body with its settings in the query string.
func (s *Server) upload(w http.ResponseWriter, r *http.Request, key apikeys.Key) {
	idem := r.Header.Get("Idempotency-Key")
	if len(idem) > 200 {
		writeError(w, http.StatusBadRequest, "bad_request", "Idempotency-Key is longer than 200 bytes")
		return
	}
	if idem != "" {
		// Within a batch a key is the batch's, whoever sent it first.
		if batch := r.URL.Query().Get("batch"); batch != "" {
			if job, err := s.jobs.ByBatchKey(r.Context(), key.Tenant, batch, idem); err == nil {
				s.respondJobs(w, http.StatusOK, []jobs.Job{job})
				return
			} else if !errors.Is(err, jobs.ErrNotFound) {
				s.internal(w, r, err)
				return
			}
		}
		if job, err := s.jobs.ByIdempotencyKey(r.Context(), key.ID, idem); err == nil {
			s.respondJobs(w, http.StatusOK, []jobs.Job{job})
			return
		} else if !errors.Is(err, jobs.ErrNotFound) {
			s.internal(w, r, err)
			return
		}
	}
	form := uploadForm{key: key, params: map[string]string{}}
	var ups []upload
	var err error
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt == "multipart/form-data" {
		ups, err = s.readMultipart(r, &form)
	} else {
		ups, err = s.readRaw(r, &form)
	}
	if err == nil {
		err = s.applyBatch(r.Context(), &form)
	}
	if err == nil {
		err = s.checkUpload(&form, ups)
	}
	var created []jobs.Job
	if err == nil {
		created, err = s.record(r.Context(), key, idem, &form, ups)
	}
	if err != nil {
		s.discard(ups)
		var ae *apiError
		if errors.As(err, &ae) {
			writeError(w, ae.status, ae.code, ae.msg)
			return
		}
		s.internal(w, r, err)
		return
	}
	if len(created) == 1 {
		w.Header().Set("Location", "/v1/jobs/"+created[0].ID)
	}
	s.respondJobs(w, http.StatusAccepted, created)
}

// readMultipart streams each file part into storage as it arrives.
func (s *Server) readMultipart(r *http.Request, form *uploadForm) ([]upload, error) {
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, badRequest("malformed multipart body: %v", err)
	}
	var ups []upload
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return ups, badRequest("malformed multipart body: %v", err)
		}
		if partFilename(part) == "" && part.FormName() != "file" {
			v, err := io.ReadAll(io.LimitReader(part, maxFieldBytes+1))
			if err != nil {
				return ups, badRequest("reading field %s: %v", part.FormName(), err)
			}
			if len(v) > maxFieldBytes {
				return ups, badRequest("field %s is longer than %d bytes", part.FormName(), maxFieldBytes)
			}
			if err := form.set(part.FormName(), string(v)); err != nil {
				return ups, err
			}
			continue
		}
		if part.FormName() != "file" {
			return ups, badRequest("file part named %q: files go in parts named \"file\"", part.FormName())
		}
		// Fail fast when the target was named before the files.
		if err := s.applyBatch(r.Context(), form); err != nil {
			return ups, err
		}
		if form.target != "" {
			if _, err := s.target(form.key, form.target); err != nil {
				return ups, err
			}
		}
		name, err := cleanFilename(partFilename(part))
		if err != nil {
			return ups, err
		}
		up, err := s.store(r.Context(), part, -1, name, contentType(part.Header.Get("Content-Type"), name))
		if err != nil {
			return ups, err
		}
		ups = append(ups, up)
	}
	if len(ups) == 0 {
		return nil, badRequest("no file: send the file in a multipart part named \"file\"")
	}
	return ups, nil
}

// readRaw stores a raw body whose settings are in the query string.
func (s *Server) readRaw(r *http.Request, form *uploadForm) ([]upload, error) {
	q := r.URL.Query()
	for name, vs := range q {
		if err := form.set(name, vs[len(vs)-1]); err != nil {
			return nil, err
		}
	}
	if err := s.applyBatch(r.Context(), form); err != nil {
		return nil, err
	}
	if form.target == "" {
		return nil, badRequest("missing target: name it in ?target= (or name a batch object in ?batch=)")
	}
	if _, err := s.target(form.key, form.target); err != nil {
		return nil, err
	}
	name, err := cleanFilename(q.Get("filename"))
	if err != nil {
		return nil, err
	}
	ctype := q.Get("content_type")
	if ctype == "" {
		ctype = r.Header.Get("Content-Type")
	}
	up, err := s.store(r.Context(), r.Body, r.ContentLength, name, contentType(ctype, name))
	if err != nil {
		return nil, err
	}
	return []upload{up}, nil
}

// store streams one file into object storage under a new job id.
func (s *Server) store(ctx context.Context, body io.Reader, size int64, filename, ctype string) (upload, error) {
	id := uuid.Must(uuid.NewV7()).String()
	key := storage.KeyFor(id)
	st, err := s.objects.Put(ctx, key, body, size, s.cfg.MaxUploadBytes, ctype)
	if errors.Is(err, storage.ErrTooLarge) {
		return upload{}, &apiError{http.StatusRequestEntityTooLarge, "too_large",
			fmt.Sprintf("file %q is over the limit of %d bytes", filename, s.cfg.MaxUploadBytes)}
	}
	if err != nil {
		if ctx.Err() != nil {
			return upload{}, badRequest("upload of %q interrupted: %v", filename, ctx.Err())
		}
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) || isClientError(err) {
			return upload{}, badRequest("reading %q: %v", filename, err)
		}
		return upload{}, fmt.Errorf("store %q: %w", filename, err)
	}
	if size >= 0 && st.Size != size {
		_ = s.objects.Remove(context.WithoutCancel(ctx), key)
		return upload{}, badRequest("body of %q was %d bytes, Content-Length said %d", filename, st.Size, size)
	}
	uploadedBytes.Add(float64(st.Size))
	return upload{stored: st, id: id, filename: filename, contentType: ctype}, nil
}

// isClientError tells a broken request body from a storage failure.
func isClientError(err error) bool {
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, multipart.ErrMessageTooLarge) ||
		strings.Contains(err.Error(), "multipart:")
}

// checkUpload validates what is only known once the whole request is read.
func (s *Server) checkUpload(form *uploadForm, ups []upload) error {
	if form.target == "" {
		return badRequest("missing field target")
	}
	t, err := s.target(form.key, form.target)
	if err != nil {
		return err
	}
	if form.path != "" && len(ups) > 1 {
		return badRequest("field path names one file: send one file per request with it")
	}
	if err := checkParams(t, form.merged(t)); err != nil {
		return err
	}
	for _, up := range ups {
		if err := checkSize(t, up.filename, up.stored.Size); err != nil {
			return err
		}
	}
	return nil
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

// record writes the jobs and publishes them. A job that cannot be published
// now is still accepted: the sweeper publishes it when the queue is back.
func (s *Server) record(ctx context.Context, key apikeys.Key, idem string, form *uploadForm, ups []upload) ([]jobs.Job, error) {
	t := s.targets[form.target]
	params := form.merged(t)
	var out []jobs.Job
	var published []string
	queueDown := false
	for i, up := range ups {
		n := jobs.New{ID: up.id, Tenant: key.Tenant, Target: t.Name, Batch: form.batch, Filename: up.filename,
			ContentType: up.contentType, Size: up.stored.Size, SHA256: up.stored.SHA256,
			ObjectKey: up.stored.Key, Params: params, MaxAttempts: t.MaxAttempts, APIKeyID: key.ID}
		if idem != "" {
			n.IdempotencyKey = idem
			if i > 0 {
				n.IdempotencyKey = idem + "#" + strconv.Itoa(i)
			}
		}
		// Record even if the client went away: the bytes are stored.
		job, created, err := s.jobs.CreateWithPath(context.WithoutCancel(ctx), n, form.path)
		if err != nil {
			return nil, err
		}
		if !created {
			// A concurrent request with the same key won: drop our copy.
			_ = s.objects.Remove(context.WithoutCancel(ctx), up.stored.Key)
			out = append(out, job)
			continue
		}
		uploadedFiles.WithLabelValues(t.Name).Inc()
		out = append(out, job)
		if queueDown {
			continue // don't wait on the queue once per file
		}
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		err = s.queue.Publish(pctx, job.Target, job.ID)
		cancel()
		if err != nil {
			queueDown = true
			s.log.Warn("queue unavailable: jobs accepted, the sweeper will publish them", "job", job.ID, "err", err)
			continue
		}
		published = append(published, job.ID)
	}
	if len(published) > 0 {
		if err := s.jobs.MarkEnqueued(context.WithoutCancel(ctx), published...); err != nil {
			s.log.Warn("could not mark jobs published; they may be published twice, harmlessly", "err", err)
		}
	}
	return out, nil
}

// discard removes stored files of a refused request.
func (s *Server) discard(ups []upload) {
	for _, up := range ups {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := s.objects.Remove(ctx, up.stored.Key); err != nil {
			s.log.Warn("could not remove the file of a refused upload", "key", up.stored.Key, "err", err)
		}
		cancel()
	}
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
