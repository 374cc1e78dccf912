package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strings"

	"github.com/ferry-relay/ferry/apitypes"
	"github.com/ferry-relay/ferry/internal/apikeys"
	"github.com/ferry-relay/ferry/internal/hashchain"
	"github.com/ferry-relay/ferry/jobs"
	"github.com/ferry-relay/ferry/storage"
)

// Headers of a part: the part's own SHA-256 (checked if sent) and the
// SHA-256 state the bytes before it leave (hashchain), which lets complete
// prove the whole file's SHA-256 without reading it back.
const (
	headerPartSHA256 = "X-Part-SHA256"
	headerPartChain  = "X-Part-SHA256-Chain"
)

// putPart is the receive step of a session: one part streamed into the
// multipart upload while it is hashed, then recorded.
func (s *Server) putPart(w http.ResponseWriter, r *http.Request, key apikeys.Key) {
	p, err := s.receivePart(w, r, key)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, apitypes.Part{N: p.N, Size: p.Size, SHA256: p.SHA256})
}

func (s *Server) receivePart(w http.ResponseWriter, r *http.Request, key apikeys.Key) (jobs.Part, error) {
	ss, err := s.session(r, key)
	if err != nil {
		return jobs.Part{}, err
	}
	if err := openForParts(ss); err != nil {
		return jobs.Part{}, err
	}
	n, err := partNumber(r, ss.Parts)
	if err != nil {
		return jobs.Part{}, err
	}
	size := partSize(ss, n)
	switch {
	case r.ContentLength < 0:
		return jobs.Part{}, &apiError{http.StatusLengthRequired, "length_required", "a part needs its Content-Length"}
	case r.ContentLength != size:
		return jobs.Part{}, badRequest("part %d must be %d bytes, Content-Length says %d", n, size, r.ContentLength)
	}
	hs, err := newPartHashes(r.Header, n, ss)
	if err != nil {
		return jobs.Part{}, err
	}
	body := s.idleBody(w, r)
	etag, err := s.sessions.objects.PutPart(r.Context(), ss.Job.ObjectKey, ss.UploadID, n,
		io.TeeReader(body, hs), size)
	body.done()
	switch {
	case errors.Is(err, storage.ErrBody):
		return jobs.Part{}, badRequest("part %d cut short: %v", n, err)
	case errors.Is(err, storage.ErrNoUpload):
		return jobs.Part{}, sessionError(jobs.ErrSessionExpired)
	case err != nil:
		return jobs.Part{}, err
	}
	p, err := hs.part(n, size, etag, n == ss.Parts)
	if err != nil {
		return jobs.Part{}, err
	}
	if err := s.sessions.store.RecordPart(r.Context(), ss.ID, p, s.cfg.SessionTTL); err != nil {
		return jobs.Part{}, sessionError(err)
	}
	sessionPartBytes.Add(float64(size))
	return p, nil
}

// openForParts refuses a session that takes no more parts.
func openForParts(ss jobs.Session) error {
	switch {
	case ss.State != jobs.SessionOpen:
		return sessionError(jobs.ErrSessionClosed)
	case expired(ss):
		return sessionError(jobs.ErrSessionExpired)
	}
	return nil
}

// partHashes hashes a part as it streams: its own SHA-256, and, when the
// client sent the state before it, the chain on to the state after it.
type partHashes struct {
	own      hash.Hash
	declared string
	chain    hash.Hash
	chainIn  string
}

func newPartHashes(h http.Header, n int, ss jobs.Session) (*partHashes, error) {
	hs := &partHashes{own: sha256.New(), declared: strings.ToLower(h.Get(headerPartSHA256))}
	if hs.declared != "" && !sha256Hex.MatchString(hs.declared) {
		return nil, badRequest("%s must be 64 hex digits", headerPartSHA256)
	}
	if in := strings.ToLower(h.Get(headerPartChain)); in != "" {
		c, err := hashchain.Resume(in, int64(n-1)*ss.PartSize)
		if err != nil {
			return nil, badRequest("%s: %v", headerPartChain, err)
		}
		hs.chain, hs.chainIn = c, in
	}
	return hs, nil
}

func (hs *partHashes) Write(p []byte) (int, error) {
	hs.own.Write(p)
	if hs.chain != nil {
		hs.chain.Write(p)
	}
	return len(p), nil
}

// part checks the declared SHA-256 and returns the part to record: the
// chain's end is the state after it, or for the last part the file's
// SHA-256.
func (hs *partHashes) part(n int, size int64, etag string, last bool) (jobs.Part, error) {
	p := jobs.Part{N: n, Size: size, ETag: etag, SHA256: hex.EncodeToString(hs.own.Sum(nil)), ChainIn: hs.chainIn}
	if hs.declared != "" && hs.declared != p.SHA256 {
		// S3 holds the bad part now; it is never assembled (complete uses
		// the ETags recorded), and sending the part again replaces it.
		return jobs.Part{}, &apiError{http.StatusBadRequest, "checksum_mismatch",
			fmt.Sprintf("part %d: its bytes have SHA-256 %s, %s said %s; send it again", n, p.SHA256, headerPartSHA256, hs.declared)}
	}
	if hs.chain == nil {
		return p, nil
	}
	if last {
		p.ChainOut = hex.EncodeToString(hs.chain.Sum(nil))
		return p, nil
	}
	out, err := hashchain.State(hs.chain)
	if err != nil {
		return jobs.Part{}, err
	}
	p.ChainOut = out
	return p, nil
}

// provenSHA256 is the file's SHA-256 when the parts' chain proves it, or
// "" when a link is missing.
func provenSHA256(ss jobs.Session) string {
	if len(ss.Received) != ss.Parts {
		return ""
	}
	want := hashchain.Initial()
	for _, p := range ss.Received {
		if p.ChainIn == "" || p.ChainIn != want {
			return ""
		}
		want = p.ChainOut
	}
	return want
}

// readBackSHA256 reads the assembled file once to hash it: the proof when
// the client sent no chain.
func (s *Server) readBackSHA256(ctx context.Context, key string) (string, int64, error) {
	rc, err := s.sessions.objects.Open(ctx, key)
	if err != nil {
		return "", 0, err
	}
	defer rc.Close()
	h := sha256.New()
	n, err := io.Copy(h, rc)
	if err != nil {
		return "", 0, fmt.Errorf("read back %s: %w", key, err)
	}
	sessionReadBackBytes.Add(float64(n))
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// missing lists the parts a session has not received (Received is in
// order of number).
func missing(ss jobs.Session) []int {
	out := []int{}
	i := 0
	for n := 1; n <= ss.Parts; n++ {
		for i < len(ss.Received) && ss.Received[i].N < n {
			i++
		}
		if i == len(ss.Received) || ss.Received[i].N != n {
			out = append(out, n)
		}
	}
	return out
}
