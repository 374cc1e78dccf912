package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/ferry-relay/ferry/apitypes"
	"github.com/ferry-relay/ferry/internal/fakes/sink"
	"github.com/ferry-relay/ferry/jobs"
)

// requestTimes notes when each job's requests reached the handler behind.
type requestTimes struct {
	next http.Handler
	mu   sync.Mutex
	at   map[string][]time.Time
}

func (h *requestTimes) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if id := r.Header.Get("X-Ferry-Job-Id"); id != "" {
		h.mu.Lock()
		h.at[id] = append(h.at[id], time.Now())
		h.mu.Unlock()
	}
	h.next.ServeHTTP(w, r)
}

func (h *requestTimes) of(id string) []time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]time.Time(nil), h.at[id]...)
}

// The delivery whose refused credentials paused the target is not sent
// again before the first probe is due, even though its retry is published
// at once and the worker was already fetching (concurrency 4) when the
// refusal came: the attempt checks the pause right before it sends.
func TestRefusedDeliveryWaitsForTheProbe(t *testing.T) {
	t.Parallel()
	const probe = 2 * time.Second
	fake := sink.New(sink.Options{Token: "tok"})
	times := &requestTimes{next: fake, at: map[string][]time.Time{}}
	srv := httptest.NewServer(times)
	t.Cleanup(srv.Close)
	p := newPipeline(t, fmt.Sprintf(`targets:
  - name: h
    kind: http
    url: %s/ok/
    headers: {Authorization: "Bearer tok"}
    concurrency: 4
    credential_probe: %s`, srv.URL, probe), pipelineOptions{})
	fake.RefuseCredentials(time.Minute)
	id := p.upload("h", file{"a.txt", []byte("refused, then accepted")})[0].ID
	waitFor(t, 20*time.Second, func() bool {
		var list apitypes.TargetList
		p.get("/v1/targets", &list)
		return list.Targets[0].State == "paused_credentials"
	})
	fake.RefuseCredentials(0)
	if j := p.waitFinal([]string{id}, 30*time.Second)[id]; j.Status != jobs.StatusSuccess || j.Attempts != 1 {
		t.Fatalf("job: %s after %d attempts (%s)", j.Status, j.Attempts, j.LastError)
	}
	at := times.of(id)
	if len(at) < 2 {
		t.Fatalf("%d requests of the job, want the refused one and the probe", len(at))
	}
	// The probe is due credential_probe after the pause; allow for
	// the clock of the pause being read a little after the refusal.
	if gap := at[1].Sub(at[0]); gap < probe-200*time.Millisecond {
		t.Fatalf("the refused delivery was sent again %s later, before the probe was due (%s)", gap.Round(time.Millisecond), probe)
	}
}
