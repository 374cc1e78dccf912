package httptarget_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/ferry-relay/ferry/fakes/sink"
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
	for _, body := range []string{"raw", "multipart"} {
		t.Run(body, func(t *testing.T) {
			targetstest.Run(t, targetstest.Harness{New: func(t *testing.T) (targets.Deliverer, targetstest.Fake, map[string]string) {
				s := sink.New(sink.Options{})
				srv := httptest.NewServer(s)
				t.Cleanup(srv.Close)
				c, err := httptarget.NewClient(httptarget.Settings{URL: srv.URL + "/ok", Method: "PUT", Body: body}, srv.Client())
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
