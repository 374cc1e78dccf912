package api_test

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/ferry-relay/ferry/apitypes"
)

// get sends GET path with the server's key and returns the status, the
// Retry-After header and the error code of the answer.
func get(t *testing.T, us uploadServer, path string) (int, string, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, us.url+path, nil)
	req.Header.Set("Authorization", "Bearer "+us.key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var e apitypes.Error
	_ = json.Unmarshal(b, &e)
	return resp.StatusCode, resp.Header.Get("Retry-After"), e.Error.Code
}

// A listing whose store cannot be reached is an outage (503, retry
// later), not the client's mistake: with a cursor it used to answer
// "400 invalid cursor". A cursor no listing gave is still 400, found
// without asking the store.
func TestListingCursorWhenTheStoreIsDown(t *testing.T) {
	t.Parallel()
	us := newUploadServer(t, 1<<20, deadStore)
	for _, tc := range []struct {
		name, path string
		status     int
		code       string
	}{
		{"valid cursor", "/v1/jobs?cursor=01890a5d-ac96-774b-bcce-b302099a8057", http.StatusServiceUnavailable, "unavailable"},
		{"no cursor", "/v1/jobs", http.StatusServiceUnavailable, "unavailable"},
		{"malformed cursor", "/v1/jobs?cursor=not-a-job-id", http.StatusBadRequest, "bad_request"},
		{"job", "/v1/jobs/01890a5d-ac96-774b-bcce-b302099a8057", http.StatusServiceUnavailable, "unavailable"},
		{"batches", "/v1/batches?cursor=default/b", http.StatusServiceUnavailable, "unavailable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, retryAfter, code := get(t, us, tc.path)
			if status != tc.status || code != tc.code {
				t.Fatalf("GET %s: %d %s, want %d %s", tc.path, status, code, tc.status, tc.code)
			}
			if status == http.StatusServiceUnavailable && retryAfter == "" {
				t.Errorf("GET %s: 503 without Retry-After", tc.path)
			}
		})
	}
}
