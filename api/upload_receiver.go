package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"

	"github.com/ferry-relay/ferry/storage"
)

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
	// Reading stops at the smaller limit, the server's or the target's:
	// no byte past it is read, let alone stored.
	limit, tooLarge := s.cfg.MaxUploadBytes, s.tooLarge(filename)
	if lim := maxFileBytes(req.target); lim > 0 && lim < limit {
		limit, tooLarge = lim, overTargetLimit(req.target, filename, lim)
	}
	var st storage.Stored
	var err error
	if req.earlier != nil {
		st, err = hashOnly(body, size, limit)
	} else {
		if needsMarker(size) {
			if err := rc.mark(key); err != nil {
				return err
			}
		}
		rc.keys = append(rc.keys, key)
		st, err = rc.store(key, body, size, limit, ctype)
	}
	if errors.Is(err, storage.ErrTooLarge) {
		return tooLarge
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
	if err := checkDeclared(req, filename, st.SHA256); err != nil {
		return err
	}
	if req.earlier == nil {
		uploadedBytes.Add(float64(st.Size))
	}
	return nil
}

// store puts one file in storage, in a span of its own.
func (rc *receiver) store(key string, body io.Reader, size, limit int64, ctype string) (storage.Stored, error) {
	ctx, span := tracer().Start(rc.ctx, "upload.store")
	defer span.End()
	st, err := rc.s.objects.Put(ctx, key, body, size, limit, ctype)
	if span.IsRecording() {
		span.SetAttributes(attribute.Int64("ferry.bytes", st.Size))
		if err != nil {
			failSpan(span, "file not stored")
		}
	}
	return st, err
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

// outcomeTimeout bounds the question a request whose record was cut
// midway asks the store: were its jobs recorded?
const outcomeTimeout = 5 * time.Second

// unrecorded tells, after a record whose outcome is unknown (the
// connection broke during the commit), whether the store now says that
// none of the request's jobs exist: then its files can go at once, rather
// than an hour later by the orphan sweep. false when the store still does
// not answer, or when the jobs were recorded after all (they stay, and
// the sweeper publishes them).
func (rc *receiver) unrecorded() bool {
	ids := make([]string, len(rc.ups))
	for i, up := range rc.ups {
		ids[i] = up.id
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(rc.ctx), outcomeTimeout)
	defer cancel()
	found, err := rc.s.jobs.ExistingIDs(ctx, ids)
	if err != nil {
		rc.s.log.Warn("upload recorded or not: the store does not say; its files are left to the orphan sweep", "err", err)
		return false
	}
	return len(found) == 0
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
