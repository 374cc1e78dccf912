package ui

import (
	"crypto/tls"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ferry-relay/ferry/apitypes"
)

func TestSafeNext(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"/ui/jobs?status=FAILED", "/ui/jobs?status=FAILED"},
		{"", "/ui/"},
		{"https://evil.example/ui/", "/ui/"},
		{"//evil.example/ui/", "/ui/"},
		{"/ui/\\evil", "/ui/"},
		{"/v1/jobs", "/ui/"},
		{"/ui/\r\nSet-Cookie: x", "/ui/"},
	} {
		if got := safeNext(c.in); got != c.want {
			t.Errorf("safeNext(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestSameOrigin(t *testing.T) {
	for _, c := range []struct {
		origin string
		tls    bool
		want   bool
	}{
		{"", false, true}, // no Origin: left to the CSRF token
		{"http://ferry.test", false, true},
		{"https://ferry.test", true, true},
		{"http://ferry.test", true, false},
		{"http://evil.example", false, false},
		{"null", false, false},
	} {
		r := httptest.NewRequest("POST", "http://ferry.test/ui/logout", nil)
		if c.origin != "" {
			r.Header.Set("Origin", c.origin)
		}
		if c.tls {
			r.TLS = &tls.ConnectionState{}
		}
		if got := sameOrigin(r); got != c.want {
			t.Errorf("Origin %q (tls %v): %v, want %v", c.origin, c.tls, got, c.want)
		}
	}
}

func TestFormatting(t *testing.T) {
	f := func(x float64) *float64 { return &x }
	for _, c := range []struct{ got, want string }{
		{humanBytes(0), "0 B"}, {humanBytes(1536), "1.5 KiB"}, {humanBytes(5 << 30), "5.0 GiB"},
		{humanNum(1234567), "1\u202f234\u202f567"}, {humanNum(12), "12"},
		{eta(nil), "—"}, {eta(f(42)), "42 s"}, {eta(f(3 * 3600)), "3 h 00 min"}, {eta(f(5 * 86400)), "5.0 days"},
		{reportName(`a "b"/c`), "report-a _b__c.csv"}, {reportName("été"), "report-_t_.csv"},
		{stateLabel("paused_credentials"), "paused: credentials refused"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

func TestChartsAreNumbersOnly(t *testing.T) {
	s := string(sparkline([]int64{0, 3, 1, 7}))
	if !strings.HasPrefix(s, `<svg class="spark"`) || !strings.Contains(s, "11 deliveries") {
		t.Errorf("sparkline: %s", s)
	}
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	c := string(throughputChart([]apitypes.ThroughputPoint{{At: at, Seconds: 600, Success: 600}, {At: at.Add(10 * time.Minute), Seconds: 60, Success: 30, Failed: 2}}))
	if strings.Count(c, "<rect") != 2 || !strings.Contains(c, "60/min") {
		t.Errorf("chart: %s", c)
	}
	if throughputChart(nil) == "" {
		t.Error("an empty chart says nothing")
	}
}

func TestTemplatesParse(t *testing.T) {
	if _, err := parseTemplates(); err != nil {
		t.Fatal(err)
	}
}
