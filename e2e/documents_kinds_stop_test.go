package e2e

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-relay/ferry/jobs"
	"github.com/ferry-relay/ferry/worker"
)

// holdAnswer passes requests on to a fake. Armed, it lets the fake carry
// out the next request match takes, then holds the answer until the
// client goes away: the system did the step, and the worker that asked is
// stopped before it hears so.
type holdAnswer struct {
	next  http.Handler
	match func(*http.Request) bool
	armed atomic.Bool
	// held receives once a request's answer is being held.
	held chan struct{}
}

func (h *holdAnswer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.match(r) || !h.armed.CompareAndSwap(true, false) {
		h.next.ServeHTTP(w, r)
		return
	}
	h.next.ServeHTTP(httptest.NewRecorder(), r)
	// The body read to its end: the server then notices the client going
	// away (the request's context ends).
	_, _ = io.Copy(io.Discard, r.Body)
	h.held <- struct{}{}
	select {
	case <-r.Context().Done():
	case <-time.After(30 * time.Second):
	}
	panic(http.ErrAbortHandler) // no answer, ever
}

// TestDocumentKindsWorkerStopped: per kind, the worker is stopped while
// the system has carried out v2's last step but not answered, and v3 was
// accepted meanwhile (it waits for v2). Restarted, the worker finds what
// v2's step did: each version is at the system once, in order.
func TestDocumentKindsWorkerStopped(t *testing.T) {
	t.Parallel()
	for _, vk := range versionKinds {
		if vk.last == nil {
			continue
		}
		t.Run(vk.kind, func(t *testing.T) {
			t.Parallel()
			fake := vk.fake()
			h := &holdAnswer{next: fake, match: vk.last, held: make(chan struct{}, 1)}
			p := kindPipeline(t, vk, h, pipelineOptions{noWorker: true})
			p.startWorker(worker.Config{Lease: 3 * time.Second, ShutdownGrace: 50 * time.Millisecond})
			v1, v2, v3 := []byte("stopped v1"), []byte("stopped v2"), []byte("stopped v3")
			if j := p.deliver("dms", "stop.pdf", v1, vk.params); j.Status != jobs.StatusSuccess {
				t.Fatalf("v1: %s %q", j.Status, j.LastError)
			}
			h.armed.Store(true)
			_, j2 := p.sendDoc("dms", "stop.pdf", v2, vk.params)
			select {
			case <-h.held:
			case <-time.After(20 * time.Second):
				t.Fatal("v2's last step never reached the system")
			}
			_, j3 := p.sendDoc("dms", "stop.pdf", v3, vk.params)
			p.stopWorker()
			<-p.workerDone
			p.startWorker(worker.Config{Lease: 3 * time.Second, ShutdownGrace: 5 * time.Second})
			final := p.waitFinal([]string{j2.ID, j3.ID}, 30*time.Second)
			for _, id := range []string{j2.ID, j3.ID} {
				if j := final[id]; j.Status != jobs.StatusSuccess {
					t.Fatalf("version %d: %s after %d attempts %q", j.Version, j.Status, j.Attempts, j.LastError)
				}
			}
			wantVersions(t, fake, v1, v2, v3)
			as, err := p.jobs.Attempts(t.Context(), jobs.AllTenants(), j2.ID)
			if err != nil || len(as) != 2 || as[0].Outcome != jobs.OutcomeInterrupted {
				t.Fatalf("v2's attempts: %+v %v, want one interrupted, then one", as, err)
			}
		})
	}
}

// TestDocumentKindsSupersededWhileStopped: per kind, v2 and v3 accepted
// while no worker runs: v2 is SUPERSEDED, never delivered; v3 is.
func TestDocumentKindsSupersededWhileStopped(t *testing.T) {
	t.Parallel()
	for _, vk := range versionKinds {
		t.Run(vk.kind, func(t *testing.T) {
			t.Parallel()
			fake := vk.fake()
			p := kindPipeline(t, vk, fake, pipelineOptions{noWorker: true})
			p.startWorker(worker.Config{Lease: 3 * time.Second, ShutdownGrace: 5 * time.Second})
			v1, v2, v3 := []byte("down v1"), []byte("down v2"), []byte("down v3")
			if j := p.deliver("dms", "down.pdf", v1, vk.params); j.Status != jobs.StatusSuccess {
				t.Fatalf("v1: %s %q", j.Status, j.LastError)
			}
			p.stopWorker()
			<-p.workerDone
			_, j2 := p.sendDoc("dms", "down.pdf", v2, vk.params)
			_, j3 := p.sendDoc("dms", "down.pdf", v3, vk.params)
			if j := p.waitFinal([]string{j2.ID}, 5*time.Second)[j2.ID]; j.Status != jobs.StatusSuperseded {
				t.Fatalf("v2 is %s, want SUPERSEDED", j.Status)
			}
			p.startWorker(worker.Config{Lease: 3 * time.Second, ShutdownGrace: 5 * time.Second})
			if j := p.waitFinal([]string{j3.ID}, 30*time.Second)[j3.ID]; j.Status != jobs.StatusSuccess {
				t.Fatalf("v3: %s %q", j.Status, j.LastError)
			}
			wantVersions(t, fake, v1, v3)
		})
	}
}
