package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"slices"
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/ferry-relay/ferry/internal/tracing"
	"github.com/ferry-relay/ferry/jobs"
)

// Step 3 of an upload: the request's jobs recorded together, then
// published (upload.go).

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
	if req.form.document != "" {
		// Only then: the fingerprints of requests without a document stay
		// what they were.
		field(h, "document:"+req.form.document)
		field(h, req.form.sha256)
	}
	for _, up := range ups {
		field(h, up.filename)
		field(h, strconv.FormatInt(up.stored.Size, 10))
		field(h, up.stored.SHA256)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// record is step 3: every job in one transaction, then published. It
// returns created=false with the first request's jobs for a repeat; a
// request that is not the first one's repeat is jobs.ErrKeyReused.
func (s *Server) record(ctx context.Context, req *uploadRequest, rec *receiver) ([]jobs.Job, bool, error) {
	fp := fingerprint(req, rec.ups)
	if req.earlier != nil {
		if (req.earlierFingerprint != "" && req.earlierFingerprint != fp) || len(req.earlier) != len(rec.ups) {
			return nil, false, fmt.Errorf("key %q: %w", req.idem, jobs.ErrKeyReused)
		}
		return req.earlier, false, nil
	}
	t := req.target
	// Each job keeps the upload's trace, for the worker's attempts and
	// for the sweeper's publishes of its retries.
	tp := tracing.TraceParent(ctx)
	r := jobs.Request{IdempotencyKey: req.idem, Fingerprint: fp, Tenant: req.key.Tenant, Batch: req.form.batch, APIKeyID: req.key.ID,
		Markers: rec.markers}
	for _, up := range rec.ups {
		r.Jobs = append(r.Jobs, jobs.New{ID: up.id, Tenant: req.key.Tenant, Target: t.Name, Batch: req.form.batch, Filename: up.filename,
			ContentType: up.contentType, Size: up.stored.Size, SHA256: up.stored.SHA256,
			ObjectKey: up.stored.Key, Params: req.params, MaxAttempts: t.MaxAttempts, APIKeyID: req.key.ID,
			ClientPath: req.form.path, DocumentKey: req.form.document, TraceParent: tp})
	}
	// The bytes are stored: record them even if the client went away.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	rctx, span := tracer().Start(rctx, "upload.record", trace.WithAttributes(attribute.Int("ferry.files", len(r.Jobs))))
	created, isNew, err := s.jobs.RecordRequest(rctx, r)
	if err != nil {
		failSpan(span, "not recorded")
	}
	span.End()
	if err != nil {
		return nil, false, err
	}
	if !isNew {
		return created, false, nil
	}
	rec.mu.Lock()
	// Recorded: nothing of this request is removed now but the copies of
	// files whose document held their content already.
	rec.keys, rec.markers = unusedCopies(rec.ups, created), nil
	rec.mu.Unlock()
	if len(rec.keys) > 0 {
		rec.discard()
	}
	refs := make([]jobs.Ref, 0, len(created))
	for _, j := range created {
		if j.DocumentID != "" {
			countVersion(t.Name, j.Recorded)
		}
		if j.Recorded != jobs.RecordedUnchanged {
			refs = append(refs, jobs.RefOf(j))
		}
	}
	uploadedFiles.WithLabelValues(t.Name).Add(float64(len(refs)))
	ectx, span := tracer().Start(ctx, "upload.enqueue", trace.WithAttributes(attribute.Int("ferry.jobs", len(refs))))
	if n := s.enqueue.EnqueueFresh(ectx, refs); n < len(refs) {
		// Not an error of the upload: the sweeper publishes them later.
		span.SetAttributes(attribute.Int("ferry.jobs.unpublished", len(refs)-n))
	}
	span.End()
	return created, true, nil
}
