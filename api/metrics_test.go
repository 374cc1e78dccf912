package api_test

import (
	"bufio"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// metricValue scrapes url's /metrics for the sample named series (name and
// labels as the text format writes them); -1 when it is absent.
func metricValue(t *testing.T, url, series string) float64 {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			v, err := strconv.ParseFloat(rest, 64)
			if err != nil {
				t.Fatalf("%s: %v", sc.Text(), err)
			}
			return v
		}
	}
	return -1
}

// Refused uploads are counted by the error code of the answer, so the
// dashboard can show why uploads are refused. Before, only busy and
// rate-limited refusals had a counter.
func TestUploadsRefusedByReason(t *testing.T) {
	us := newUploadServer(t, 1024)
	cases := []struct {
		reason, query, key string
		size               int
		code               int
	}{
		{"unknown_target", "target=nowhere&filename=a.bin", us.key, 10, http.StatusUnprocessableEntity},
		{"too_large", "target=t&filename=a.bin", us.key, 4096, http.StatusRequestEntityTooLarge},
		{"unauthorized", "target=t&filename=a.bin", "fy_wrong", 10, http.StatusUnauthorized},
	}
	for _, tc := range cases {
		series := `ferry_uploads_refused_total{reason="` + tc.reason + `"}`
		before := metricValue(t, us.url, series)
		if before < 0 {
			t.Fatalf("%s absent before any refusal: want it at 0 from the start", series)
		}
		req, _ := http.NewRequest(http.MethodPost, us.url+"/v1/uploads?"+tc.query, strings.NewReader(strings.Repeat("x", tc.size)))
		req.Header.Set("Content-Type", "application/octet-stream")
		req.Header.Set("Authorization", "Bearer "+tc.key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.code {
			t.Fatalf("%s: answered %d, want %d", tc.reason, resp.StatusCode, tc.code)
		}
		if after := metricValue(t, us.url, series); after != before+1 {
			t.Errorf("%s went from %v to %v, want +1", series, before, after)
		}
	}
}
