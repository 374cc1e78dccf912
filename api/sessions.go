package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/ferry-relay/ferry/apitypes"
	"github.com/ferry-relay/ferry/internal/apikeys"
	"github.com/ferry-relay/ferry/jobs"
	"github.com/ferry-relay/ferry/storage"
)

// Upload sessions (issue 23): a large file goes in numbered parts, in
// parallel, through any API process, straight into one S3 multipart
// upload; a client cut off sends only the parts that are missing. The steps
// mirror the streaming upload's: resolve (create: everything checked before
// a byte), receive (each part), record (complete: the SHA-256 proven, then
// the job recorded and queued).

// SessionTTLDefault is how long a session lives without activity.
const SessionTTLDefault = 24 * time.Hour

// Part sizes: at least sessionPartMin, and large enough that a file takes
// at most sessionPartsTarget parts; always whole MiB (so a multiple of
// SHA-256's block, which the hash chain needs) within S3's bounds.
const (
	sessionPartMin     = 16 << 20
	sessionPartsTarget = 1000
)

// SessionStore is what upload sessions need of the job store.
type SessionStore interface {
	CreateSession(ctx context.Context, ss jobs.Session, ttl time.Duration) (jobs.Session, bool, error)
	GetSession(ctx context.Context, tenant, id string) (jobs.Session, error)
	RecordPart(ctx context.Context, id string, p jobs.Part, ttl time.Duration) error
	CompleteSession(ctx context.Context, id string, n jobs.New) (jobs.Job, bool, error)
	AbortSession(ctx context.Context, tenant, id string) (jobs.Session, error)
}

// MultipartStore is what upload sessions need of object storage.
type MultipartStore interface {
	NewMultipart(ctx context.Context, key, contentType string) (string, error)
	PutPart(ctx context.Context, key, uploadID string, n int, r io.Reader, size int64) (string, error)
	CompleteMultipart(ctx context.Context, key, uploadID string, parts []storage.CompletedPart) error
	AbortMultipart(ctx context.Context, key, uploadID string) error
	Open(ctx context.Context, key string) (io.ReadCloser, error)
	Size(ctx context.Context, key string) (int64, error)
	Remove(ctx context.Context, key string) error
}

// sessions holds what the session routes use; nil when the stores given to
// New cannot keep sessions.
type sessions struct {
	store   SessionStore
	objects MultipartStore
}

func (s *Server) sessionRoutes(mux *http.ServeMux) {
	if s.sessions == nil {
		return
	}
	mux.Handle("POST /v1/uploads/sessions", s.auth(apikeys.PermUpload, s.createSession))
	mux.Handle("GET /v1/uploads/sessions/{id}", s.auth(apikeys.PermUpload, s.getSession))
	mux.Handle("PUT /v1/uploads/sessions/{id}/parts/{n}", s.auth(apikeys.PermUpload, s.limitUploads(s.putPart)))
	mux.Handle("POST /v1/uploads/sessions/{id}/complete", traced("upload.session.complete", s.auth(apikeys.PermUpload, s.completeSession)))
	mux.Handle("DELETE /v1/uploads/sessions/{id}", s.auth(apikeys.PermUpload, s.abortSession))
}

var sha256Hex = regexp.MustCompile(`^[0-9a-f]{64}$`)

// partSizeFor is ferry's part size for a file of size bytes.
func partSizeFor(size int64) int64 {
	ps := max(int64(sessionPartMin), (size+sessionPartsTarget-1)/sessionPartsTarget)
	const mib = 1 << 20
	ps = (ps + mib - 1) / mib * mib
	return min(ps, storage.MaxPartSize)
}

func partsOf(size, partSize int64) int {
	return int(max(1, (size+partSize-1)/partSize))
}

// createSession is the resolve step: the request checked as a streaming
// upload's is before its first byte, against the declared size.
func (s *Server) createSession(w http.ResponseWriter, r *http.Request, key apikeys.Key) {
	var in apitypes.NewUploadSession
	if err := decodeJSON(r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	idem := r.Header.Get("Idempotency-Key")
	ss, err := s.newSession(r.Context(), key, idem, in)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out, created, err := s.sessions.store.CreateSession(r.Context(), ss, s.cfg.SessionTTL)
	if err == nil && !created {
		if !sameSession(out, ss) {
			err = jobs.ErrKeyReused
		} else {
			out, err = s.sessions.store.GetSession(r.Context(), key.Tenant, out.ID)
		}
	}
	if err != nil || !created {
		s.abortQuietly(r.Context(), ss)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	code := http.StatusCreated
	if !created {
		code = http.StatusOK
	}
	w.Header().Set("Location", "/v1/uploads/sessions/"+out.ID)
	writeJSON(w, code, wireSession(out))
}

// newSession checks a session request and opens its multipart upload.
func (s *Server) newSession(ctx context.Context, key apikeys.Key, idem string, in apitypes.NewUploadSession) (jobs.Session, error) {
	if len(idem) > 200 {
		return jobs.Session{}, badRequest("Idempotency-Key is longer than 200 bytes")
	}
	form := uploadForm{key: key, target: in.Target, batch: in.Batch, params: map[string]string{}}
	if err := form.set("path", in.Path); in.Path != "" && err != nil {
		return jobs.Session{}, err
	}
	for k, v := range in.Params {
		if err := form.set("param."+k, v); err != nil {
			return jobs.Session{}, err
		}
	}
	req, err := s.resolve(ctx, key, "", form, `name it in "target" (or name a batch object in "batch")`)
	if err != nil {
		return jobs.Session{}, err
	}
	name, err := cleanFilename(in.Filename)
	if err != nil {
		return jobs.Session{}, err
	}
	switch {
	case in.Size < 0:
		return jobs.Session{}, badRequest("size must be the file's size in bytes, 0 or more")
	case in.SHA256 != "" && !sha256Hex.MatchString(in.SHA256):
		return jobs.Session{}, badRequest("sha256 must be 64 lowercase hex digits")
	}
	if in.Document != "" {
		if err := checkDocumentKey(in.Document); err != nil {
			return jobs.Session{}, err
		}
	}
	if err := s.checkDeclaredSize(req, name, in.Size); err != nil {
		return jobs.Session{}, err
	}
	id := uuid.Must(uuid.NewV7()).String()
	jobID := uuid.Must(uuid.NewV7()).String()
	ctype := contentType(in.ContentType, name)
	objectKey := sessionKey(jobID)
	uploadID, err := s.sessions.objects.NewMultipart(ctx, objectKey, ctype)
	if err != nil {
		return jobs.Session{}, err
	}
	ps := partSizeFor(in.Size)
	return jobs.Session{ID: id, Tenant: key.Tenant, APIKeyID: key.ID, IdempotencyKey: idem,
		PartSize: ps, Parts: partsOf(in.Size, ps), UploadID: uploadID,
		Job: jobs.New{ID: jobID, Tenant: key.Tenant, Target: req.target.Name, Batch: form.batch, Filename: name,
			ContentType: ctype, Size: in.Size, SHA256: in.SHA256, ObjectKey: objectKey, Params: req.params,
			MaxAttempts: req.target.MaxAttempts, APIKeyID: key.ID, ClientPath: form.path, DocumentKey: in.Document}}, nil
}

// sessionKey is the object of a session's file: under its own prefix, so
// that the sweeps of abandoned uploads under objects/ never take a session
// that may stay open for a day; the session's expiry removes it instead.
func sessionKey(jobID string) string { return "sessions/" + jobID }

// sameSession says whether an earlier session of the same key asks for
// the same file.
func sameSession(a, b jobs.Session) bool {
	return a.Job.Target == b.Job.Target && a.Job.Filename == b.Job.Filename && a.Job.Size == b.Job.Size &&
		a.Job.Batch == b.Job.Batch && a.Job.DocumentKey == b.Job.DocumentKey && (a.Job.SHA256 == b.Job.SHA256 || b.Job.SHA256 == "" || a.Job.SHA256 == "")
}

// abortQuietly drops the multipart upload of a session not recorded.
func (s *Server) abortQuietly(ctx context.Context, ss jobs.Session) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	if err := s.sessions.objects.AbortMultipart(ctx, ss.Job.ObjectKey, ss.UploadID); err != nil {
		s.log.Warn("could not abort the multipart upload of a session not recorded", "key", ss.Job.ObjectKey, "err", err)
	}
}

func (s *Server) getSession(w http.ResponseWriter, r *http.Request, key apikeys.Key) {
	ss, err := s.session(r, key)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, wireSession(ss))
}

func (s *Server) abortSession(w http.ResponseWriter, r *http.Request, key apikeys.Key) {
	ss, err := s.sessions.store.AbortSession(r.Context(), key.Tenant, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, sessionError(err))
		return
	}
	ctx := context.WithoutCancel(r.Context())
	if err := s.sessions.objects.AbortMultipart(ctx, ss.Job.ObjectKey, ss.UploadID); err != nil {
		s.log.Warn("could not abort a session's multipart upload", "session", ss.ID, "err", err)
	}
	if err := s.sessions.objects.Remove(ctx, ss.Job.ObjectKey); err != nil {
		s.log.Warn("could not remove an aborted session's file", "session", ss.ID, "err", err)
	}
	w.WriteHeader(http.StatusNoContent)
}

// session reads the session the path names, in the key's tenant (another
// tenant's session is not found).
func (s *Server) session(r *http.Request, key apikeys.Key) (jobs.Session, error) {
	ss, err := s.sessions.store.GetSession(r.Context(), key.Tenant, r.PathValue("id"))
	if err != nil {
		return ss, sessionError(err)
	}
	return ss, nil
}

// sessionError answers the store's session errors.
func sessionError(err error) error {
	switch {
	case errors.Is(err, jobs.ErrNotFound):
		return &apiError{http.StatusNotFound, "not_found", "no such upload session"}
	case errors.Is(err, jobs.ErrSessionExpired):
		return &apiError{http.StatusGone, "expired", "the upload session expired: its parts are gone; start a new one"}
	case errors.Is(err, jobs.ErrSessionClosed):
		return &apiError{http.StatusConflict, "session_closed", "the upload session was completed or aborted"}
	}
	return err
}

// expired says whether an open session's time ran out.
func expired(ss jobs.Session) bool {
	return ss.State == jobs.SessionOpen && !time.Now().Before(ss.ExpiresAt)
}

func wireSession(ss jobs.Session) apitypes.UploadSession {
	out := apitypes.UploadSession{ID: ss.ID, State: ss.State, Target: ss.Job.Target, Filename: ss.Job.Filename,
		Size: ss.Job.Size, SHA256: ss.Job.SHA256, PartSize: ss.PartSize, Parts: ss.Parts,
		PartURL: "/v1/uploads/sessions/" + ss.ID + "/parts/{n}", BytesReceived: ss.BytesIn,
		ExpiresAt: ss.ExpiresAt.UTC(), Received: []apitypes.Part{}, Missing: []int{}}
	if expired(ss) {
		out.State = "expired"
	}
	if ss.State == jobs.SessionCompleted {
		out.Job = ss.Job.ID
	}
	for _, p := range ss.Received {
		out.Received = append(out.Received, apitypes.Part{N: p.N, Size: p.Size, SHA256: p.SHA256})
	}
	out.Missing = missing(ss)
	return out
}

// partNumber reads the part number of the path, 1 to parts.
func partNumber(r *http.Request, parts int) (int, error) {
	n, err := strconv.Atoi(r.PathValue("n"))
	if err != nil || n < 1 || n > parts {
		return 0, badRequest("part number %q out of range: this session has parts 1 to %d", r.PathValue("n"), parts)
	}
	return n, nil
}

// partSize is the size part n must have.
func partSize(ss jobs.Session, n int) int64 {
	if n < ss.Parts {
		return ss.PartSize
	}
	return ss.Job.Size - int64(ss.Parts-1)*ss.PartSize
}

func missingParts(missing []int) error {
	return &apiError{http.StatusConflict, "missing_parts",
		fmt.Sprintf("parts not received: %v; send them, then complete again", missing)}
}
