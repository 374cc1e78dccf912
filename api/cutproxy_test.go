package api_test

import (
	"bytes"
	"io"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
)

// cutProxy stands between the job store and Postgres, on loopback, and
// cuts the first connection whose client sends needle: after forwarding
// that message (the statement runs, its answer is lost) or without
// forwarding it (the statement never runs). Either way the client sees
// its connection break after it sent the statement, and cannot know which
// happened. Every other connection, and every later one, passes as is.
type cutProxy struct {
	ln      net.Listener
	target  string
	needle  []byte
	forward bool
	cut     atomic.Bool // the cut happened
	wg      sync.WaitGroup
}

func newCutProxy(t testing.TB, target string, needle []byte, forward bool) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target, needle: needle, forward: forward}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() { _ = ln.Close(); p.wg.Wait() })
	return p
}

// url is dbURL with its host replaced by the proxy's.
func (p *cutProxy) url(t testing.TB, dbURL string) string {
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = p.ln.Addr().String()
	return u.String()
}

func (p *cutProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go func() { defer p.wg.Done(); p.serve(c) }()
	}
}

func (p *cutProxy) serve(client net.Conn) {
	defer client.Close()
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer server.Close()
	var cutting atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 32<<10)
		for {
			n, err := server.Read(buf)
			if cutting.Load() || err != nil {
				// The answer to the cut statement is lost with the connection.
				_ = client.Close()
				return
			}
			if _, err := client.Write(buf[:n]); err != nil {
				return
			}
		}
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := client.Read(buf)
		if err != nil {
			_ = server.Close()
			break
		}
		if bytes.Contains(buf[:n], p.needle) && p.cut.CompareAndSwap(false, true) {
			cutting.Store(true)
			if p.forward {
				_, _ = server.Write(buf[:n])
				// Wait for the answer (dropped above): the statement ran.
				<-done
			}
			_ = client.Close()
			_ = server.Close()
			break
		}
		if _, err := server.Write(buf[:n]); err != nil {
			break
		}
	}
	<-done
	_, _ = io.Copy(io.Discard, client)
}
