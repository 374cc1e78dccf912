package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ferry-relay/ferry/internal/testenv"
)

// slowPost starts a request whose body of size bytes trickles one byte
// every gap, and returns a channel that gets how long the server took to
// answer or close the connection (or 0 if neither happened within limit).
func slowPost(t *testing.T, addr, path string, size int, gap, limit time.Duration) <-chan time.Duration {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	out := make(chan time.Duration, 1)
	start := time.Now()
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\nOrigin: http://%s\r\nContent-Type: application/x-www-form-urlencoded\r\n"+
		"Content-Length: %d\r\n\r\n", path, addr, addr, size)
	done := make(chan struct{})
	go func() {
		tick := time.NewTicker(gap)
		defer tick.Stop()
		for range size {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			if _, err := conn.Write([]byte("k")); err != nil {
				return
			}
		}
	}()
	go func() {
		defer close(done)
		_ = conn.SetReadDeadline(start.Add(limit))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err == nil {
			// An answer to a refused body comes with the connection
			// closed after it.
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err == nil && resp.StatusCode/100 == 2 {
				out <- -time.Since(start) // served: negative
				return
			}
			_, err = conn.Read(make([]byte, 1))
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			out <- 0
			return
		}
		out <- time.Since(start)
	}()
	return out
}

// TestSlowBodiesCutOutsideUploads: the body of every request but an
// upload has a read deadline (FERRY_BODY_READ_TIMEOUT, 500 ms here).
// Before, the server had none: 16 unauthenticated connections trickling a
// login form were all still open after 40 s. Now the dashboard's login and
// an API route are cut about when the deadline passes, while an upload
// trickling longer than it (it has its own idle timeout and minimum rate)
// and a handler working long after reading its body are not.
func TestSlowBodiesCutOutsideUploads(t *testing.T) {
	t.Parallel()
	const deadline = 500 * time.Millisecond
	apiStub := http.NewServeMux()
	apiStub.HandleFunc("POST /v1/uploads", func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	})
	apiStub.HandleFunc("POST /v1/jobs/retry", func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		// Work on for three deadlines after the body: the request's
		// context must not be canceled by the deadline.
		select {
		case <-r.Context().Done():
			http.Error(w, "canceled", http.StatusInternalServerError)
		case <-time.After(3 * deadline):
			w.WriteHeader(http.StatusOK)
		}
	})
	pool, _ := testenv.Postgres(t)
	handler, err := withDashboard(apiStub, pool, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	hs := apiHTTPServer(handler, config{BodyReadTimeout: deadline})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() { _ = hs.Close() })
	addr := ln.Addr().String()

	const limit = 8 * time.Second
	var logins []<-chan time.Duration
	for range 16 {
		logins = append(logins, slowPost(t, addr, "/ui/login", 60000, 100*time.Millisecond, limit))
	}
	retry := slowPost(t, addr, "/v1/jobs/retry", 1000, 100*time.Millisecond, limit)
	upload := slowPost(t, addr, "/v1/uploads", 20, 100*time.Millisecond, limit)
	for i, c := range logins {
		switch d := <-c; {
		case d == 0:
			t.Errorf("login %d: still open after %s", i, limit)
		case d < 0 || d > 4*time.Second:
			t.Errorf("login %d: served or cut after %s, want cut about %s after its start", i, d, deadline)
		}
	}
	if d := <-retry; d <= 0 || d > 4*time.Second {
		t.Errorf("trickled JSON body of an API route: %s (0: still open, negative: served)", d)
	}
	if d := <-upload; d >= 0 {
		t.Errorf("an upload trickling 2s was cut (%s): uploads have their own timeouts", d)
	}

	// A quick body, then work longer than the deadline: not canceled.
	resp, err := http.Post("http://"+addr+"/v1/jobs/retry", "application/json", strings.NewReader(`{"all":true}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("work after a quick body: %d, want 200 (the deadline must be lifted once the body is in)", resp.StatusCode)
	}
}
