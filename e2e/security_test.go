package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferry-relay/ferry/api"
	"github.com/ferry-relay/ferry/internal/apikeys"
	"github.com/ferry-relay/ferry/internal/coord/targetstate"
)

// heldUpload is a raw upload whose body the test sends when it likes.
type heldUpload struct {
	pw     *io.PipeWriter
	answer chan int
}

// holdUpload starts a raw upload of unknown size with key and returns once
// the server either answered it or is receiving it (its upload marker is
// written before its first byte is read: inProgress markers in all).
func (p *pipeline) holdUpload(key string, inProgress int) (*heldUpload, int) {
	p.t.Helper()
	pr, pw := io.Pipe()
	h := &heldUpload{pw: pw, answer: make(chan int, 1)}
	req, _ := http.NewRequest(http.MethodPost, p.api.URL+"/v1/uploads?target=raw&filename=held.bin", pr)
	req.Header.Set("Content-Type", "application/octet-stream")
	go func() {
		resp, err := http.DefaultClient.Do(withKey(req, key))
		if err != nil {
			h.answer <- 0
			return
		}
		resp.Body.Close()
		h.answer <- resp.StatusCode
	}()
	go func() { _, _ = pw.Write([]byte("first bytes ")) }()
	for start := time.Now(); time.Since(start) < 10*time.Second; time.Sleep(10 * time.Millisecond) {
		select {
		case code := <-h.answer:
			_ = pw.Close()
			return nil, code
		default:
		}
		var n int
		if err := p.pool.QueryRow(context.Background(), `SELECT count(*) FROM uploads_in_progress`).Scan(&n); err != nil {
			p.t.Fatal(err)
		}
		if n >= inProgress {
			return h, 0
		}
	}
	p.t.Fatal("the held upload was neither answered nor received within 10s")
	return nil, 0
}

// finish sends the rest of the body and returns the answer.
func (h *heldUpload) finish() int {
	_, _ = h.pw.Write([]byte("and the rest"))
	_ = h.pw.Close()
	return <-h.answer
}

// quickUpload uploads one small file with key and returns the status and
// the error message.
func (p *pipeline) quickUpload(key string) (int, string) {
	p.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, p.api.URL+"/v1/uploads?target=raw&filename=quick.txt", strings.NewReader("quick"))
	req.Header.Set("Content-Type", "text/plain")
	var e apiError
	code := p.do(withKey(req, key), &e)
	return code, e.Error.Message
}

// TestUploadSlotsSharedBetweenKeys: one key holding every upload slot no
// longer keeps another tenant out. Before, a slot freed by key a went to
// whoever asked first, so a could take it again and b got 503 for as long
// as a liked; now, while b wants a slot, a may hold only its share
// (2 slots / 2 keys), and the slot a frees goes to b. A fixed per-key cap
// (FERRY_MAX_UPLOADS_PER_KEY) holds even when slots are free.
func TestUploadSlotsSharedBetweenKeys(t *testing.T) {
	t.Parallel()
	p := newPipeline(t, sinkTarget(t, ""), pipelineOptions{noWorker: true, maxUploads: 2,
		configure: func(c *api.Config) { c.MinUploadRate = -1 }})
	a := p.newKey("a", "ta", apikeys.RoleUploader)
	b := p.newKey("b", "tb", apikeys.RoleOperator)

	a1, code := p.holdUpload(a, 1)
	if a1 == nil {
		t.Fatalf("a's first upload: %d", code)
	}
	a2, code := p.holdUpload(a, 2)
	if a2 == nil {
		t.Fatalf("a's second upload (alone, a may take every slot): %d", code)
	}
	if code, msg := p.quickUpload(b); code != http.StatusServiceUnavailable {
		t.Fatalf("b while a holds both slots: %d %q, want 503", code, msg)
	}
	if code := a1.finish(); code != http.StatusAccepted {
		t.Fatalf("a's first upload: %d", code)
	}
	// A slot is free, but b wants one and a holds its share.
	if again, code := p.holdUpload(a, 2); again != nil || code != http.StatusServiceUnavailable {
		if again != nil {
			again.finish()
		}
		t.Fatalf("a took the freed slot again (%d) while b waits: want 503", code)
	}
	if code, msg := p.quickUpload(b); code != http.StatusAccepted {
		t.Fatalf("b once a slot is free: %d %q", code, msg)
	}
	if code := a2.finish(); code != http.StatusAccepted {
		t.Fatalf("a's second upload: %d", code)
	}

	// A fixed cap: one upload per key, though three slots are free.
	q := newPipeline(t, sinkTarget(t, ""), pipelineOptions{noWorker: true, maxUploads: 4,
		configure: func(c *api.Config) { c.MaxUploadsPerKey = 1; c.MinUploadRate = -1 }})
	held, code := q.holdUpload(q.key, 1)
	if held == nil {
		t.Fatalf("first upload under the cap: %d", code)
	}
	if code, msg := q.quickUpload(q.key); code != http.StatusServiceUnavailable || !strings.Contains(msg, "share") {
		t.Errorf("second upload of one key over its cap: %d %q, want 503 naming its share", code, msg)
	}
	if code, msg := q.quickUpload(q.newKey("other", "default", apikeys.RoleUploader)); code != http.StatusAccepted {
		t.Errorf("another key: %d %q", code, msg)
	}
	if code := held.finish(); code != http.StatusAccepted {
		t.Errorf("held upload: %d", code)
	}
}

// TestSlowUploadBodyCut: a body trickling a byte every 50 ms never trips
// the idle timeout (10 s here), but falls behind the minimum rate
// (1 KiB/s over 1 s here) and is cut within about a window: before,
// it held its slot for as long as the client went on. Its partial file is
// removed and its slot freed; a body well over the rate, though it takes
// several windows, is not cut.
func TestSlowUploadBodyCut(t *testing.T) {
	t.Parallel()
	p := newPipeline(t, sinkTarget(t, ""), pipelineOptions{noWorker: true, maxUploads: 1, bodyIdle: 10 * time.Second,
		configure: func(c *api.Config) { c.MinUploadRate = 1024; c.MinUploadRateWindow = time.Second }})
	u, _ := url.Parse(p.api.URL)
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1/uploads?target=raw&filename=trickle.bin HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", u.Host, p.key, 2<<20)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for range 200 { // 10 s at most
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			if _, err := conn.Write([]byte("y")); err != nil {
				return
			}
		}
	}()
	start := time.Now()
	_ = conn.SetReadDeadline(start.Add(8 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		t.Fatal("the trickling upload was not cut: no answer and the connection still open after 8s")
	case err == nil:
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("status %d, want 400", resp.StatusCode)
		}
		t.Logf("cut after %s: %d %s", time.Since(start), resp.StatusCode, msg)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("cut only after %s, want about one window (1s)", d)
	}
	waitFor(t, 5*time.Second, func() bool { return p.countObjects() == 0 })
	if n := p.countJobs(); n != 0 {
		t.Errorf("%d jobs after a cut upload", n)
	}

	// The one slot is free again (once the cut upload's handler is
	// done), and a steady 40 KiB/s body taking two windows goes through.
	waitFor(t, 5*time.Second, func() bool {
		code, _ := p.quickUpload(p.key)
		return code == http.StatusAccepted
	})
	pr, pw := io.Pipe()
	go func() {
		chunk := make([]byte, 4<<10)
		for range 20 {
			time.Sleep(100 * time.Millisecond)
			if _, err := pw.Write(chunk); err != nil {
				return
			}
		}
		_ = pw.Close()
	}()
	req, _ := http.NewRequest(http.MethodPost, p.api.URL+"/v1/uploads?target=raw&filename=steady.bin", pr)
	req.Header.Set("Content-Type", "application/octet-stream")
	var e apiError
	if code := p.do(req, &e); code != http.StatusAccepted {
		t.Errorf("a steady body over the minimum rate: %d %q", code, e.Error.Message)
	}
}

// clientFrom is an HTTP client whose connections come from the loopback
// address ip (127.0.0.0/8 is all loopback on Linux).
func clientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}, Timeout: 10 * time.Second}
}

// getAs sends GET /v1/jobs with key from client c: the status and the
// Retry-After.
func (p *pipeline) getAs(c *http.Client, key string) (int, string) {
	p.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, p.api.URL+"/v1/jobs", nil)
	resp, err := c.Do(withKey(req, key))
	if err != nil {
		p.t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Retry-After")
}

func randomKey() string {
	var b [20]byte
	_, _ = rand.Read(b[:])
	return apikeys.Prefix + hex.EncodeToString(b[:])
}

// TestInvalidKeysLimitedPerAddress: random unknown keys cost a Postgres
// query each, and were never limited (2,500/s filled the pool). Now one
// address gets 401 for its first few (the burst, 5 here), then 429 with
// Retry-After, unchecked. A key that worked before from that address
// still works; another address is not limited; the limit passes.
func TestInvalidKeysLimitedPerAddress(t *testing.T) {
	t.Parallel()
	p := newPipeline(t, "targets: []\n", pipelineOptions{noWorker: true,
		configure: func(c *api.Config) { c.AuthFailureLimit = 2; c.AuthFailureBurst = 5 }})
	attacker := clientFrom("127.0.0.1")
	if code, _ := p.getAs(attacker, p.key); code != http.StatusOK {
		t.Fatalf("valid key before the flood: %d", code)
	}
	unauthorized, limited := 0, 0
	start := time.Now()
	for range 40 {
		code, retry := p.getAs(attacker, randomKey())
		switch code {
		case http.StatusUnauthorized:
			unauthorized++
		case http.StatusTooManyRequests:
			limited++
			if n, err := strconv.Atoi(retry); err != nil || n < 1 {
				t.Errorf("429 with Retry-After %q", retry)
			}
		default:
			t.Fatalf("random key: %d", code)
		}
	}
	// The burst, and 2 a second for as long as the flood took.
	if most := 5 + int(2*time.Since(start).Seconds()) + 1; unauthorized > most || limited == 0 {
		t.Errorf("40 random keys from one address: %d checked (401), %d refused unchecked (429); want at most %d checked",
			unauthorized, limited, most)
	}
	if code, _ := p.getAs(attacker, p.key); code != http.StatusOK {
		t.Errorf("a key that worked before, from the limited address: %d", code)
	}
	if code, _ := p.getAs(clientFrom("127.0.0.2"), randomKey()); code != http.StatusUnauthorized {
		t.Errorf("a random key from another address: %d, want 401", code)
	}
	waitFor(t, 5*time.Second, func() bool {
		code, _ := p.getAs(attacker, randomKey())
		return code == http.StatusUnauthorized
	})
}

// TestOnlyOperatorsProbeTargets: "probe now" acts on a target every tenant
// shares, which the role table gives operators and admins, not
// uploaders; before, an uploader's probe was accepted. The dashboard shows
// the button only to those who may press it.
func TestOnlyOperatorsProbeTargets(t *testing.T) {
	t.Parallel()
	p := newPipeline(t, sinkTarget(t, ""), pipelineOptions{noWorker: true})
	up := p.newKey("uploader", "acme", apikeys.RoleUploader)
	op := p.newKey("operator", "beta", apikeys.RoleOperator)
	admin := p.newKey("admin", "default", apikeys.RoleAdmin)
	if _, err := targetstate.NewStore(p.pool, "test").Pause(t.Context(), "raw", "send: HTTP 401: token refused", time.Hour); err != nil {
		t.Fatal(err)
	}
	var e apiError
	if code := p.as(up, http.MethodPost, "/v1/targets/raw/resume", "", &e); code != http.StatusForbidden {
		t.Errorf("uploader's probe: %d, want 403", code)
	}
	if code := p.as(op, http.MethodPost, "/v1/targets/raw/resume", "", nil); code != http.StatusAccepted {
		t.Errorf("operator's probe of a paused target: %d, want 202", code)
	}
	if code := p.as(admin, http.MethodPost, "/v1/targets/raw/resume", "", nil); code != http.StatusAccepted && code != http.StatusOK {
		t.Errorf("admin's probe: %d", code)
	}

	d := newDashboard(t, p)
	for _, c := range []struct {
		key    string
		button bool
	}{{up, false}, {op, true}} {
		b := newBrowser(t, d.URL)
		b.login(c.key)
		_, html := b.do("GET", "/ui/", nil, nil)
		if !strings.Contains(html, "paused: credentials refused") || strings.Contains(html, "Probe now") != c.button {
			t.Errorf("overview for %s: paused target shown, Probe now button %v, want %v", map[bool]string{false: "uploader", true: "operator"}[c.button],
				strings.Contains(html, "Probe now"), c.button)
		}
	}
}
