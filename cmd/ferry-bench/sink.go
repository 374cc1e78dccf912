package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// sink is the loopback HTTP target both sides deliver to. It reads every
// body to the end while hashing it, checks the hash against X-Ferry-SHA256
// when the sender gives one, keeps nothing, and answers 204.
type sink struct {
	srv *http.Server
	url string

	mu       sync.Mutex
	seen     map[string]bool
	want     int
	done     chan struct{}
	receipts chan receipt

	bytes      atomic.Int64
	mismatches atomic.Int64
	// conns counts the connections accepted: a sender that keeps its
	// connections alive opens about as many as it has requests in flight.
	conns atomic.Int64
	bufs  sync.Pool
}

// receipt is one delivery the sink received in full.
type receipt struct {
	id   string
	at   time.Time
	size int64
}

func startSink() (*sink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("sink: %w", err)
	}
	s := &sink{url: "http://" + ln.Addr().String(), seen: map[string]bool{},
		bufs: sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}}
	s.srv = &http.Server{Handler: http.HandlerFunc(s.serve), ReadHeaderTimeout: 10 * time.Second,
		ConnState: func(_ net.Conn, st http.ConnState) {
			if st == http.StateNew {
				s.conns.Add(1)
			}
		}}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

func (s *sink) serve(w http.ResponseWriter, r *http.Request) {
	h := sha256.New()
	buf := s.bufs.Get().(*[]byte)
	n, err := io.CopyBuffer(h, r.Body, *buf)
	s.bufs.Put(buf)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	at := time.Now()
	s.bytes.Add(n)
	if want := r.Header.Get("X-Ferry-SHA256"); want != "" && want != hex.EncodeToString(h.Sum(nil)) {
		s.mismatches.Add(1)
		http.Error(w, "sha256 mismatch", http.StatusUnprocessableEntity)
		return
	}
	id := r.Header.Get("X-Ferry-Job-Id")
	s.mu.Lock()
	if !s.seen[id] {
		s.seen[id] = true
		if s.done != nil && len(s.seen) == s.want {
			close(s.done)
			s.done = nil
		}
	}
	rc := s.receipts
	s.mu.Unlock()
	if rc != nil {
		select {
		case rc <- receipt{id: id, at: at, size: n}:
		default:
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// expect forgets what was delivered and returns a channel closed once n
// distinct jobs have been.
func (s *sink) expect(n int) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seen = make(map[string]bool, n)
	s.want = n
	s.done = make(chan struct{})
	return s.done
}

// watch makes the sink report every delivery on the returned channel.
func (s *sink) watch() <-chan receipt {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.receipts = make(chan receipt, 64)
	return s.receipts
}

// waitFor waits for the delivery of job id.
func waitReceipt(ctx context.Context, rc <-chan receipt, id string) (receipt, error) {
	for {
		select {
		case r := <-rc:
			if r.id == id {
				return r, nil
			}
		case <-ctx.Done():
			return receipt{}, fmt.Errorf("waiting for the delivery of %s: %w", id, ctx.Err())
		}
	}
}

func (s *sink) check() error {
	if n := s.mismatches.Load(); n > 0 {
		return errors.New("the target received " + fmt.Sprint(n) + " file(s) whose SHA-256 did not match")
	}
	return nil
}

func (s *sink) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
}
