package httptarget_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/ferry-relay/ferry/internal/fakes/sink"
	"github.com/ferry-relay/ferry/targets"
	"github.com/ferry-relay/ferry/targets/httptarget"
	"github.com/ferry-relay/ferry/targets/targetstest"
)

// sinkFake adapts the sink to the conformance suite.
type sinkFake struct{ *sink.Server }

func (f sinkFake) Documents() []targetstest.Document {
	var out []targetstest.Document
	for _, d := range f.Server.Documents() {
		out = append(out, targetstest.Document{RemoteID: d.ID, Name: d.Name, SHA256: d.SHA256, Size: d.Size})
	}
	return out
}
func (f sinkFake) Steps() []string    { return []string{"send"} }
func (f sinkFake) FailNext(string)    { f.Fail(1, http.StatusServiceUnavailable, 0) }
func (f sinkFake) ExpireCredentials() {}

func TestConformance(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		probe      bool
		opts       sink.Options
	}{
		// A receiver that honours Idempotency-Key.
		{name: "raw", body: "raw"},
		{name: "multipart", body: "multipart"},
		// One that does not, with a probe_url to ask.
		{name: "probe", body: "raw", probe: true, opts: sink.Options{IgnoreIdempotencyKey: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			targetstest.Run(t, targetstest.Harness{New: func(t *testing.T) (targets.Deliverer, targetstest.Fake, map[string]string) {
				opts := tc.opts
				opts.Token = "sink-token"
				s := sink.New(opts)
				srv := httptest.NewServer(s)
				t.Cleanup(srv.Close)
				settings := httptarget.Settings{URL: srv.URL + "/ok", Method: "PUT", Body: tc.body,
					Headers: map[string]string{"Authorization": "Bearer sink-token"}}
				if tc.probe {
					settings.ProbeURL = srv.URL + "/_probe/{job_id}?sha256={sha256}"
				}
				c, err := httptarget.NewClient(settings, srv.Client())
				if err != nil {
					t.Fatal(err)
				}
				return c, sinkFake{s}, nil
			}})
		})
	}
}

func TestSettingsValidation(t *testing.T) {
	for _, s := range []httptarget.Settings{
		{},
		{URL: "ftp://x"},
		{URL: "http://x", Method: "GET"},
		{URL: "http://x", Body: "json"},
	} {
		if _, err := httptarget.NewClient(s, http.DefaultClient); err == nil {
			t.Errorf("%+v accepted", s)
		}
	}
}
