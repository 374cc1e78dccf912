package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/ferry-relay/ferry/apitypes"
	"github.com/ferry-relay/ferry/internal/fakes/sink"
	"github.com/ferry-relay/ferry/internal/testenv"
	"github.com/ferry-relay/ferry/jobs"
	"github.com/ferry-relay/ferry/storage"
	"github.com/ferry-relay/ferry/worker"
)

// Object storage that stops answering pauses the deliveries instead of
// failing their jobs: no attempt counts, the target's circuit stays shut,
// /readyz says s3 and deliveries are down, and once storage answers again
// every job is delivered by itself, its bytes whole.
func TestStorageOutagePausesDeliveries(t *testing.T) {
	t.Parallel()
	proxy := newTCPProxy(t, testenv.S3Config().Endpoint)
	fake, url := newSink(t, sink.Options{})
	p := newPipeline(t, fmt.Sprintf(`targets:
  - name: s
    kind: http
    url: %s/ok/
    max_attempts: 2
    backoff: {initial: 100ms, max: 200ms}`, url), pipelineOptions{noWorker: true,
		storage: func(c *storage.Config) { c.Endpoint = proxy.addr }})
	want := map[string][]byte{}
	var ids []string
	for i := range 6 {
		data := bytes.Repeat([]byte(fmt.Sprintf("file %d ", i)), 100*(i+1))
		j := p.upload("s", file{fmt.Sprintf("f%d.txt", i), data})[0]
		ids, want[j.ID] = append(ids, j.ID), data
	}

	proxy.down()
	outage := time.Now()
	p.startWorker(worker.Config{Lease: 3 * time.Second, ShutdownGrace: 5 * time.Second,
		StorageProbe: 100 * time.Millisecond, StorageProbeMax: 500 * time.Millisecond})
	// The first attempt to end says how long one takes against storage
	// that does not answer; storage stays down for longer than the old
	// worker needed to burn both attempts of every job.
	var first time.Duration
	waitFor(t, time.Minute, func() bool {
		for _, id := range ids {
			var as apitypes.AttemptList
			p.get("/v1/jobs/"+id+"/attempts", &as)
			if len(as.Attempts) > 0 && as.Attempts[0].FinishedAt != nil {
				first = as.Attempts[0].FinishedAt.Sub(as.Attempts[0].StartedAt)
				return true
			}
		}
		return false
	})
	for time.Since(outage) < 3*first+2*time.Second {
		for _, id := range ids {
			if j, _ := p.jobs.Get(t.Context(), jobs.AllTenants(), id); j.Status.Final() || j.Attempts > 1 {
				t.Fatalf("job %s during the outage: %s, %d attempts (%s)", id, j.Status, j.Attempts, j.LastError)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}

	waitFor(t, 10*time.Second, func() bool {
		code, states := p.readyz()
		return code == http.StatusServiceUnavailable && states["s3"] == "down" && states["deliveries"] == "down"
	})

	proxy.up()
	for id, j := range p.waitFinal(ids, time.Minute) {
		if j.Status != jobs.StatusSuccess || j.Attempts != 1 {
			t.Errorf("job %s: %s after %d attempts (%s); want SUCCESS, the outage's attempts not counted", id, j.Status, j.Attempts, j.LastError)
		}
	}
	docs := fake.Documents()
	for _, d := range docs {
		if d.SHA256 != sha(want[d.JobID]) {
			t.Errorf("job %s: the target holds other bytes", d.JobID)
		}
	}
	if len(docs) != len(ids) {
		t.Errorf("the target holds %d documents, want %d", len(docs), len(ids))
	}
	if code, states := p.readyz(); code != http.StatusOK {
		t.Errorf("/readyz after the outage: %d %v", code, states)
	}
}

// readyz returns /readyz's status code and component states.
func (p *pipeline) readyz() (int, map[string]any) {
	p.t.Helper()
	resp, err := http.Get(p.api.URL + "/readyz")
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	states := map[string]any{}
	_ = json.NewDecoder(resp.Body).Decode(&states)
	return resp.StatusCode, states
}

// tcpProxy forwards a loopback port to target. down closes the port and
// every connection through it, as a server that died; up opens the same
// port again.
type tcpProxy struct {
	t      *testing.T
	target string
	addr   string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

func newTCPProxy(t *testing.T, target string) *tcpProxy {
	p := &tcpProxy{t: t, target: target, conns: map[net.Conn]bool{}}
	p.listen("127.0.0.1:0")
	p.addr = p.ln.Addr().String()
	t.Cleanup(p.down)
	return p
}

func (p *tcpProxy) listen(addr string) {
	var ln net.Listener
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if ln, err = net.Listen("tcp", addr); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		p.t.Fatalf("proxy: %v", err)
	}
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Go(func() { p.pipe(c) })
		}
	})
}

// track notes c as open, or closes it when the proxy is down.
func (p *tcpProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln == nil {
		c.Close()
		return false
	}
	p.conns[c] = true
	return true
}

func (p *tcpProxy) pipe(c net.Conn) {
	if !p.track(c) {
		return
	}
	up, err := net.Dial("tcp", p.target)
	if err != nil || !p.track(up) {
		c.Close()
		return
	}
	var wg sync.WaitGroup
	wg.Go(func() { _, _ = io.Copy(up, c); up.Close() })
	_, _ = io.Copy(c, up)
	c.Close()
	wg.Wait()
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, up)
	p.mu.Unlock()
}

// down stops serving: the port refuses connections and those open break.
func (p *tcpProxy) down() {
	p.mu.Lock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// up serves again on the same port.
func (p *tcpProxy) up() { p.listen(p.addr) }
