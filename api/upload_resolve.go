package api

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/ferry-relay/ferry/apitypes"
	"github.com/ferry-relay/ferry/internal/apikeys"
	"github.com/ferry-relay/ferry/jobs"
	"github.com/ferry-relay/ferry/targets"
)

// Step 1 of an upload: what the request asks, checked before a byte of a
// file is read (upload.go).

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
	batchParams map[string]string
	// document is the key of the document the file is a version of, and
	// sha256 its content's declared SHA-256 (upload_document.go).
	document string
	sha256   string
}

func (f *uploadForm) set(name, value string) error {
	switch {
	case name == "target":
		f.target = value
	case name == "batch":
		f.batch = value
	case name == "document" || name == "sha256":
		return f.documentField(name, value)
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
	if err := s.sameVersion(ctx, req); err != nil {
		return nil, err
	}
	return req, nil
}

// applyBatch fills the upload's target and default parameters from the
// batch object it names. A batch name without an object is a plain label
// and changes nothing.
func (s *Server) applyBatch(ctx context.Context, form *uploadForm) error {
	if form.batch == "" {
		return nil
	}
	// One rule for every batch name, a label or an object's.
	if err := apitypes.CheckBatchName(form.batch); err != nil {
		return badRequest("%v", err)
	}
	b, err := s.jobs.Batch(ctx, form.key.Tenant, form.batch)
	if errors.Is(err, jobs.ErrBatchNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	switch {
	case form.target == "":
		form.target = b.Target
	case form.target != b.Target:
		return batchMismatch(b.Name, b.Target, form.target)
	}
	form.batchParams = b.Params
	return nil
}

func batchMismatch(batch, want, got string) error {
	return &apiError{http.StatusUnprocessableEntity, "batch_target_mismatch",
		fmt.Sprintf("batch %q delivers to target %s, not %s", batch, want, got)}
}

// merged returns the upload's parameters over the batch's over the
// target's defaults.
func (f *uploadForm) merged(t *targets.Target) map[string]string {
	p := maps.Clone(f.batchParams)
	if p == nil {
		p = map[string]string{}
	}
	maps.Copy(p, f.params)
	return t.MergeParams(p)
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

// checkParams runs the target's parameter check, if it has one.
func checkParams(t *targets.Target, params map[string]string) error {
	if pc, ok := t.Deliverer.(targets.ParamChecker); ok {
		if err := pc.CheckParams(params); err != nil {
			return &apiError{http.StatusUnprocessableEntity, "invalid_params",
				fmt.Sprintf("target %s: %v", t.Name, err)}
		}
	}
	return nil
}

// maxFileBytes is the target's size limit, or 0 when it has none.
func maxFileBytes(t *targets.Target) int64 {
	if sl, ok := t.Deliverer.(targets.SizeLimiter); ok {
		return sl.MaxFileBytes()
	}
	return 0
}

// checkSize refuses a file of a known size over the target's size limit,
// if it has one.
func checkSize(t *targets.Target, filename string, size int64) error {
	if lim := maxFileBytes(t); lim > 0 && size > lim {
		what := "file"
		if filename != "" {
			what = fmt.Sprintf("file %q", filename)
		}
		return &apiError{http.StatusRequestEntityTooLarge, "too_large",
			fmt.Sprintf("%s is %d bytes, over target %s's limit of %d", what, size, t.Name, lim)}
	}
	return nil
}

// overTargetLimit refuses a file found, as it streamed, to be over the
// target's size limit lim.
func overTargetLimit(t *targets.Target, filename string, lim int64) error {
	return &apiError{http.StatusRequestEntityTooLarge, "too_large",
		fmt.Sprintf("file %q is over target %s's limit of %d bytes", filename, t.Name, lim)}
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
