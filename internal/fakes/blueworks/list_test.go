package blueworks

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"
)

func (e *env) list(tok, from string, header map[string]string) (*http.Response, map[string]any) {
	e.t.Helper()
	u := e.url + "/scr/api/ListFiles"
	if from != "" {
		u += "?from=" + url.QueryEscape(from)
	}
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	return e.do(req)
}

func files(body map[string]any) []map[string]any {
	raw, _ := body["files"].([]any)
	out := make([]map[string]any, 0, len(raw))
	for _, f := range raw {
		out = append(out, f.(map[string]any))
	}
	return out
}

func TestListFiles(t *testing.T) {
	clock := time.Date(2026, 12, 7, 15, 0, 0, 0, time.UTC)
	now := func() time.Time { return clock }
	e := newEnv(t, Options{Now: now, Users: []string{"uploader", "boss"}, Admins: []string{"boss"}})
	tok := e.token()
	if resp, body := e.do(e.upload(tok)); resp.StatusCode != 200 || body["status"] != StatusSuccess {
		t.Fatalf("upload: %d %v", resp.StatusCode, body)
	}
	boss := map[string]string{"X-On-Behalf-Of": "boss"}

	tests := []struct {
		name   string
		tok    string
		from   string
		header map[string]string
		status int
		files  int
	}{
		{"no token", "", "", boss, 401, 0},
		{"not an administrator", tok, "", nil, 401, 0},
		{"not an administrator on behalf", tok, "", map[string]string{"X-On-Behalf-Of": "uploader"}, 401, 0},
		{"unknown user", tok, "", map[string]string{"X-On-Behalf-Of": "nobody"}, 403, 0},
		{"administrator, all files", tok, "", boss, 200, 1},
		{"long form before the upload", tok, "2026-12-07T08:59:59.000-06:00", boss, 200, 1},
		{"long form after the upload", tok, "2026-12-07T09:00:00.001-06:00", boss, 200, 0},
		{"short form is midnight CST", tok, "2026-12-07", boss, 200, 1},
		{"short form the next day", tok, "2026-12-08", boss, 200, 0},
		{"bad date", tok, "yesterday", boss, 400, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := e.list(tt.tok, tt.from, tt.header)
			if resp.StatusCode != tt.status || len(files(body)) != tt.files {
				t.Fatalf("%d with %d files, want %d with %d: %v", resp.StatusCode, len(files(body)), tt.status, tt.files, body)
			}
		})
	}
	_, body := e.list(tok, "", boss)
	f := files(body)[0]
	a := e.s.Attachments()[0]
	want := map[string]any{"id": a.ID, "fileItemId": a.FileItemID, "name": "testFileUpload", "size": "3.0",
		"parentId": "p", "ancestorId": "bp", "location": "activity", "uploadDate": strconv.FormatInt(clock.UnixMilli(), 10), "uploadUserName": "uploader"}
	for k, v := range want {
		if f[k] != v {
			t.Errorf("%s = %v, want %v", k, f[k], v)
		}
	}
	if resp, _ := e.do(mustRequest(http.MethodPost, e.url+"/scr/api/ListFiles")); resp.StatusCode != 405 {
		t.Errorf("POST ListFiles: %d", resp.StatusCode)
	}
}

func TestListFilesServiceID(t *testing.T) {
	e := newEnv(t, Options{ServiceID: true, Users: []string{"admin"}, Admins: []string{"admin"}})
	tok := e.token()
	if resp, _ := e.list(tok, "", nil); resp.StatusCode != 400 {
		t.Fatalf("without X-On-Behalf-Of: %d", resp.StatusCode)
	}
	if resp, _ := e.list(tok, "", map[string]string{"X-On-Behalf-Of": "admin"}); resp.StatusCode != 200 {
		t.Fatalf("on behalf of an administrator: %d", resp.StatusCode)
	}
}

func TestRefuseLookup(t *testing.T) {
	e := newEnv(t, Options{})
	tok := e.token()
	e.s.RefuseLookup()
	if resp, _ := e.list(tok, "", nil); resp.StatusCode != 503 {
		t.Fatalf("refused lookup: %d", resp.StatusCode)
	}
	if resp, _ := e.list(tok, "", nil); resp.StatusCode != 200 {
		t.Fatalf("next lookup: %d", resp.StatusCode)
	}
}

// TestLostUploadAnswers: each way of losing FileUpload's answer stores the
// file and gives the client no usable answer.
func TestLostUploadAnswers(t *testing.T) {
	tests := []struct {
		how    Lost
		status int // 0: no answer at all
	}{
		{LostDrop, 0},
		{LostGateway, http.StatusBadGateway},
		{LostGarbled, http.StatusOK},
		{LostLate, 0},
	}
	for _, tt := range tests {
		t.Run(string(tt.how), func(t *testing.T) {
			e := newEnv(t, Options{})
			tok := e.token()
			if err := e.s.LoseAnswerAs(StepUpload, tt.how); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			resp, err := e.hc.Do(e.upload(tok).WithContext(ctx))
			switch {
			case tt.status == 0 && err == nil:
				resp.Body.Close()
				t.Fatalf("answered %d", resp.StatusCode)
			case tt.status != 0 && err != nil:
				t.Fatal(err)
			case tt.status != 0:
				resp.Body.Close()
				if resp.StatusCode != tt.status || resp.Header.Get("Content-Type") != "text/html" {
					t.Fatalf("answered %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
				}
			}
			if n := len(e.s.Documents()); n != 1 {
				t.Fatalf("%d documents, want the one stored", n)
			}
		})
	}
	e := newEnv(t, Options{})
	if err := e.s.LoseAnswerAs(StepUpload, "sometimes"); err == nil {
		t.Error("unknown way accepted")
	}
}

func mustRequest(method, u string) *http.Request {
	req, _ := http.NewRequest(method, u, nil)
	return req
}
