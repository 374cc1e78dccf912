package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/ferry-relay/ferry/apitypes"
	"github.com/ferry-relay/ferry/internal/apikeys"
	"github.com/ferry-relay/ferry/internal/tracing"
	"github.com/ferry-relay/ferry/jobs"
	"github.com/ferry-relay/ferry/storage"
)

// completeSession is the record step of a session: with every part
// present, the multipart upload is assembled, the whole file's SHA-256 is
// proven (by the parts' hash chain, or by reading the file back once), and
// only then is the job recorded and queued. Completing again answers the
// same job.
func (s *Server) completeSession(w http.ResponseWriter, r *http.Request, key apikeys.Key) {
	var in apitypes.CompleteUploadSession
	if err := decodeJSON(r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	ss, err := s.session(r, key)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	job, created, err := s.complete(r.Context(), ss, in.SHA256)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if !created {
		s.respondJobs(w, http.StatusOK, []jobs.Job{job})
		return
	}
	w.Header().Set("Location", "/v1/jobs/"+job.ID)
	s.respondJobs(w, http.StatusAccepted, []jobs.Job{job})
}

func (s *Server) complete(ctx context.Context, ss jobs.Session, declared string) (jobs.Job, bool, error) {
	if ss.State == jobs.SessionCompleted {
		j, err := s.jobs.Get(ctx, jobs.AllTenants(), ss.Job.ID)
		return j, false, err
	}
	if err := openForParts(ss); err != nil {
		return jobs.Job{}, false, err
	}
	want, err := declaredSHA256(ss.Job.SHA256, declared)
	if err != nil {
		return jobs.Job{}, false, err
	}
	if m := missing(ss); len(m) > 0 {
		return jobs.Job{}, false, missingParts(m)
	}
	// From here the client is not waited for: the parts are all in.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sessionCompleteTimeout)
	defer cancel()
	if err := s.assemble(ctx, ss); err != nil {
		return jobs.Job{}, false, err
	}
	if err := s.prove(ctx, ss, want); err != nil {
		return jobs.Job{}, false, err
	}
	n := ss.Job
	n.SHA256 = want
	n.TraceParent = tracing.TraceParent(ctx) // the file's trace starts at its completion
	job, created, err := s.sessions.store.CompleteSession(ctx, ss.ID, n)
	if err != nil {
		return jobs.Job{}, false, sessionError(err)
	}
	if job.DocumentID != "" {
		countVersion(n.Target, job.Recorded)
	}
	if job.ID != n.ID {
		// The document held this content already: its version answers,
		// and the session's copy is not needed.
		if err := s.sessions.objects.Remove(ctx, n.ObjectKey); err != nil {
			s.log.Warn("could not remove an unchanged version's copy", "session", ss.ID, "err", err)
		}
	}
	if created {
		uploadedFiles.WithLabelValues(n.Target).Inc()
		uploadedBytes.Add(float64(n.Size))
		s.enqueue.EnqueueFresh(ctx, []jobs.Ref{jobs.RefOf(job)})
	}
	return job, created, nil
}

// sessionCompleteTimeout bounds assembling, proving and recording a file
// once every part is in (reading 5 GiB back takes seconds, not minutes).
const sessionCompleteTimeout = 10 * time.Minute

// declaredSHA256 is the file's declared SHA-256: at creation, at
// completion, or both if they agree.
func declaredSHA256(atCreate, atComplete string) (string, error) {
	switch {
	case atComplete != "" && !sha256Hex.MatchString(atComplete):
		return "", badRequest("sha256 must be 64 lowercase hex digits")
	case atCreate != "" && atComplete != "" && atCreate != atComplete:
		return "", badRequest("sha256 %s differs from the one the session was created with (%s)", atComplete, atCreate)
	case atCreate == "" && atComplete == "":
		return "", badRequest("the session was created without sha256: send it to complete")
	}
	return max(atCreate, atComplete), nil
}

// assemble completes the multipart upload; one completed before (by a
// complete whose record did not happen) is checked by its size.
func (s *Server) assemble(ctx context.Context, ss jobs.Session) error {
	parts := make([]storage.CompletedPart, len(ss.Received))
	for i, p := range ss.Received {
		parts[i] = storage.CompletedPart{N: p.N, ETag: p.ETag}
	}
	err := s.sessions.objects.CompleteMultipart(ctx, ss.Job.ObjectKey, ss.UploadID, parts)
	if !errors.Is(err, storage.ErrNoUpload) {
		return err
	}
	size, serr := s.sessions.objects.Size(ctx, ss.Job.ObjectKey)
	if serr != nil || size != ss.Job.Size {
		return sessionError(jobs.ErrSessionExpired)
	}
	return nil
}

// prove checks the assembled file has the declared SHA-256; on a mismatch
// the session is aborted and its file removed: nothing is recorded.
func (s *Server) prove(ctx context.Context, ss jobs.Session, want string) error {
	got := provenSHA256(ss)
	if got == "" {
		var size int64
		var err error
		if got, size, err = s.readBackSHA256(ctx, ss.Job.ObjectKey); err != nil {
			return err
		}
		if size != ss.Job.Size {
			got = fmt.Sprintf("(a file of %d bytes)", size)
		}
	}
	if got == want {
		return nil
	}
	if _, err := s.sessions.store.AbortSession(ctx, "", ss.ID); err != nil {
		s.log.Warn("could not abort a session whose file did not match", "session", ss.ID, "err", err)
	}
	if err := s.sessions.objects.Remove(ctx, ss.Job.ObjectKey); err != nil {
		s.log.Warn("could not remove a session's file that did not match", "session", ss.ID, "err", err)
	}
	return &apiError{http.StatusUnprocessableEntity, "checksum_mismatch",
		fmt.Sprintf("the file's SHA-256 is %s, not the declared %s: nothing recorded, the session is aborted", got, want)}
}
