package api

import (
	"errors"
	"mime"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/ferry-relay/ferry/apitypes"
	"github.com/ferry-relay/ferry/internal/apikeys"
	"github.com/ferry-relay/ferry/jobs"
	"github.com/ferry-relay/ferry/storage"
	"github.com/ferry-relay/ferry/targets"
)

// An upload is a pipeline of named steps, each finished before the next
// begins, each in a file of its own:
//
//  1. resolve (upload_resolve.go): the request's target, batch,
//     parameters and (raw bodies) declared size, validated once into one
//     uploadRequest before any byte of a file is read. A multipart body's
//     fields must therefore come before its first file part.
//  2. receive (upload_receive.go, upload_receiver.go): each file streams
//     into storage under a new job id, marked as an upload in progress
//     first so the orphan sweep leaves it alone. Any read error of the
//     body refuses the whole request; so does a body that ends early.
//  3. record (upload_record.go): every job of the request in one
//     transaction, then the one enqueue path publishes them. A failure
//     before the commit leaves no job and no object; after it, nothing is
//     removed.
//
// The rules of the body (upload_body.go) and of names (upload_names.go)
// serve the steps.

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

// upload is one file of an upload request, stored (or, for a repeated
// request, only hashed) and waiting for its job.
type upload struct {
	stored      storage.Stored
	id          string
	filename    string
	contentType string
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
	// same is the document's latest version when the request declared its
	// content and the version holds it: the request is answered with it,
	// its body unread (upload_document.go).
	same *jobs.Job
}

// upload accepts files: multipart/form-data with "file" parts, or a raw
// body with its settings in the query string.
func (s *Server) upload(w http.ResponseWriter, r *http.Request, key apikeys.Key) {
	idem := r.Header.Get("Idempotency-Key")
	if err := checkIdempotencyKey(idem); err != nil {
		s.fail(w, r, err)
		return
	}
	body := s.idleBody(w, r)
	rctx, span := tracer().Start(r.Context(), "upload.receive")
	rec := &receiver{s: s, ctx: rctx}
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
	endReceive(span, req, rec, err)
	if err == nil && req.same != nil {
		s.answerSame(w, body, *req.same)
		return
	}
	var answer []jobs.Job
	created := false
	if err == nil {
		answer, created, err = s.record(r.Context(), req, rec)
	}
	if errors.Is(err, jobs.ErrOutcomeUnknown) && rec.unrecorded() {
		err = &apiError{http.StatusServiceUnavailable, "unavailable",
			"the job store failed while this upload was recorded, and nothing was: retry after " + unavailableRetryAfter + "s"}
	}
	if (err != nil && !errors.Is(err, jobs.ErrOutcomeUnknown)) || (err == nil && !created) {
		rec.discard()
	}
	if err != nil {
		body.refused(w)
		s.fail(w, r, err)
		return
	}
	if !created || allUnchanged(answer) {
		s.respondJobs(w, http.StatusOK, answer)
		return
	}
	if len(answer) == 1 {
		w.Header().Set("Location", "/v1/jobs/"+answer[0].ID)
	}
	s.respondJobs(w, http.StatusAccepted, answer)
}

// answerSame answers an upload whose document's latest version holds
// the content it declared, its body unread: 200 when that version is
// delivered or on its way, 202 when it was queued again.
func (s *Server) answerSame(w http.ResponseWriter, body *idleBody, job jobs.Job) {
	body.refused(w) // the body is not read: the connection closes after the answer
	code := http.StatusOK
	if job.Recorded == jobs.RecordedRequeued {
		code = http.StatusAccepted
		w.Header().Set("Location", "/v1/jobs/"+job.ID)
	}
	s.respondJobs(w, code, []jobs.Job{job})
}

// endReceive ends the span of step 2 with what it received.
func endReceive(span trace.Span, req *uploadRequest, rec *receiver, err error) {
	if span.IsRecording() {
		var size int64
		for _, up := range rec.ups {
			size += up.stored.Size
		}
		span.SetAttributes(attribute.Int("ferry.files", len(rec.ups)), attribute.Int64("ferry.bytes", size))
		if req != nil && req.target != nil {
			span.SetAttributes(attribute.String("ferry.target", req.target.Name))
		}
		if err != nil {
			failSpan(span, "upload refused or failed")
		}
	}
	span.End()
}

func (s *Server) respondJobs(w http.ResponseWriter, code int, js []jobs.Job) {
	writeJSON(w, code, apitypes.UploadResult{Jobs: wireJobs(js)})
}
