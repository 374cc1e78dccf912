package e2e

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ferry-relay/ferry/apitypes"
	fakeblueworks "github.com/ferry-relay/ferry/internal/fakes/blueworks"
	fakefourd "github.com/ferry-relay/ferry/internal/fakes/fourd"
	"github.com/ferry-relay/ferry/jobs"
)

// TestFourDConfigErrorFailsTheJobNotTheTarget: jobs naming a dataclass 4D
// does not have (404, errCode 1800) fail at their first attempt, are not
// retried, and leave the target's health alone: its circuit stays closed
// and the next good job is delivered at once.
func TestFourDConfigErrorFailsTheJobNotTheTarget(t *testing.T) {
	fake := fakefourd.New(fakefourd.Options{})
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	p := newPipeline(t, fmt.Sprintf(`targets:
  - name: erp
    kind: 4d
    max_attempts: 3
    backoff: {initial: 50ms, max: 100ms}
    base_url: %s
    dataclass: Invoices
    attribute: pdf`, srv.URL), pipelineOptions{})
	var bad []string
	for i := range 6 {
		j := p.uploadWith(map[string]string{"target": "erp", "param.key": "1", "param.dataclass": "Nope"},
			file{fmt.Sprintf("bad-%d.pdf", i), []byte("no such dataclass")})
		bad = append(bad, j[0].ID)
	}
	for id, j := range p.waitFinal(bad, 30*time.Second) {
		if j.Status != jobs.StatusFailed || j.Attempts != 1 || !strings.Contains(j.LastError, "1800") {
			t.Fatalf("job %s: %s after %d attempts: %s; want FAILED at once naming errCode 1800", id, j.Status, j.Attempts, j.LastError)
		}
	}
	var ts apitypes.TargetList
	p.get("/v1/targets", &ts)
	for _, tg := range ts.Targets {
		if tg.Name == "erp" && tg.State != "ok" {
			t.Fatalf("target erp is %s (%s): configuration errors counted against its health", tg.State, tg.Reason)
		}
	}
	good := p.uploadWith(map[string]string{"target": "erp", "param.key": "2"}, file{"good.pdf", []byte("fine")})[0].ID
	if j := p.waitFinal([]string{good}, 10*time.Second)[good]; j.Status != jobs.StatusSuccess {
		t.Fatalf("good job: %s %s", j.Status, j.LastError)
	}
}

// TestBlueworksLostAnswerAdopted: a FileUpload that landed but whose answer
// was lost (each of the four ways) is found with ListFiles on the next
// attempt and adopted: one file at Blueworks, the job SUCCESS with its id,
// not marked uncertain.
func TestBlueworksLostAnswerAdopted(t *testing.T) {
	fake, p := blueworksPipeline(t, `    backoff: {initial: 100ms, max: 200ms}
    timeout: 2s`, pipelineOptions{})
	for _, how := range []fakeblueworks.Lost{fakeblueworks.LostDrop, fakeblueworks.LostGateway, fakeblueworks.LostGarbled, fakeblueworks.LostLate} {
		t.Run(string(how), func(t *testing.T) {
			fake.Reset()
			if err := fake.LoseAnswerAs(fakeblueworks.StepUpload, how); err != nil {
				t.Fatal(err)
			}
			id := p.upload("bw", file{"lost-" + string(how) + ".txt", []byte("answer lost: " + string(how))})[0].ID
			j := p.waitFinal([]string{id}, 30*time.Second)[id]
			docs := fake.Attachments()
			if j.Status != jobs.StatusSuccess || len(docs) != 1 || fake.Creations() != 1 || j.RemoteID != docs[0].ID {
				t.Fatalf("job %s %s remote %q; attachments %+v", j.Status, j.LastError, j.RemoteID, docs)
			}
			var as apitypes.AttemptList
			p.get("/v1/jobs/"+id+"/attempts", &as)
			if n := len(as.Attempts); n != 2 || as.Attempts[1].Uncertain != "" {
				t.Fatalf("attempts %+v: want two, neither uncertain", as.Attempts)
			}
		})
	}
}
