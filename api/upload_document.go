package api

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/ferry-relay/ferry/jobs"
)

// Uploads that name a document (issue 21): the key in field or query
// "document", and optionally the content's SHA-256 in "sha256". With both,
// an upload of the content the document's latest version holds is
// answered before its body is read (upload.go): nothing is stored.

// maxDocumentKey bounds a document key, in bytes.
const maxDocumentKey = 1024

// checkDocumentKey refuses a key that is too long, not UTF-8, or holds a
// control character, naming the field.
func checkDocumentKey(key string) error {
	switch {
	case key == "":
		return badRequest("field document is empty: name the document, or leave the field out")
	case len(key) > maxDocumentKey:
		return badRequest("field document is %d bytes, over the limit of %d", len(key), maxDocumentKey)
	case !utf8.ValidString(key):
		return badRequest("field document is not valid UTF-8")
	case strings.IndexFunc(key, unicode.IsControl) >= 0:
		return badRequest("field document holds a control character")
	}
	return nil
}

// checkSHA256 refuses a declared SHA-256 that is not 64 lowercase hex
// digits, naming the field.
func checkSHA256(v string) error {
	if len(v) != 64 || strings.IndexFunc(v, func(r rune) bool { return (r < '0' || r > '9') && (r < 'a' || r > 'f') }) >= 0 {
		return badRequest("field sha256 must be 64 lowercase hexadecimal digits, the SHA-256 of the file")
	}
	return nil
}

// sameVersion answers, before the body is read, an upload that declared
// its content when the document's latest version holds that content: the
// request is then done (req.same). An upload repeating an earlier request
// (Idempotency-Key) is answered by that request instead.
func (s *Server) sameVersion(ctx context.Context, req *uploadRequest) error {
	f := req.form
	if f.document == "" || f.sha256 == "" || req.earlier != nil {
		return nil
	}
	job, err := s.jobs.SameVersion(ctx, f.key.Tenant, req.target.Name, f.document, f.sha256)
	switch {
	case errors.Is(err, jobs.ErrNotFound):
		return nil
	case err != nil:
		return err
	}
	req.same = &job
	countVersion(req.target.Name, job.Recorded)
	if job.Recorded == jobs.RecordedRequeued {
		s.enqueue.EnqueueFresh(ctx, []jobs.Ref{jobs.RefOf(job)})
	}
	return nil
}

// checkDeclared refuses a file whose bytes do not have the SHA-256 the
// request declared; its copy is removed with the refused request.
func checkDeclared(req *uploadRequest, filename, got string) error {
	if req.form.sha256 != "" && got != req.form.sha256 {
		return badRequest("file %q has SHA-256 %s, not %s as field sha256 declared", filename, got, req.form.sha256)
	}
	return nil
}

// oneDocumentFile refuses a second file in a request that names a
// document: the key names one file.
func oneDocumentFile(f uploadForm) error {
	if f.document != "" {
		return badRequest("two files of one request name document %q: a document key names one file; send one file per request", f.document)
	}
	if f.sha256 != "" {
		return badRequest("field sha256 declares one file's content: send one file per request with it")
	}
	return nil
}

// unusedCopies returns the object keys of the request's files whose jobs
// were not recorded anew (the document already held their content): their
// copies are removed.
func unusedCopies(ups []upload, recorded []jobs.Job) []string {
	var keys []string
	for i, j := range recorded {
		if j.Recorded != jobs.RecordedNew && i < len(ups) && ups[i].stored.Key != "" {
			keys = append(keys, ups[i].stored.Key)
		}
	}
	return keys
}

// allUnchanged reports whether no job of js was recorded or queued again:
// the answer is then 200, not 202.
func allUnchanged(js []jobs.Job) bool {
	for _, j := range js {
		if j.Recorded != jobs.RecordedUnchanged {
			return false
		}
	}
	return true
}

// documentField reads a document field (or query parameter) into f.
func (f *uploadForm) documentField(name, value string) error {
	switch name {
	case "document":
		if err := checkDocumentKey(value); err != nil {
			return err
		}
		f.document = value
	case "sha256":
		if err := checkSHA256(value); err != nil {
			return err
		}
		f.sha256 = value
	default:
		return fmt.Errorf("not a document field: %s", name)
	}
	return nil
}
