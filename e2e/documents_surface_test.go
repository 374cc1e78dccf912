package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-relay/ferry/apitypes"
	"github.com/ferry-relay/ferry/client"
	"github.com/ferry-relay/ferry/client/push"
	"github.com/ferry-relay/ferry/internal/fakes/sink"
)

// TestDocumentsSurface drives the client, `ferry push --documents` and the
// dashboard's document page over the real pipeline (issue 21, the
// surface's part): a tree pushed as documents, one file changed and pushed
// again (version 2 of the same document, the others skipped), the same
// tree pushed into another batch (nothing new: the server answers from the
// documents' latest versions), then the documents listed by page, one
// shown with its history, and its page on the dashboard. It skips on a
// server without the documents routes.
func TestDocumentsSurface(t *testing.T) {
	target := httptest.NewServer(sink.New(sink.Options{}))
	t.Cleanup(target.Close)
	p := newPipeline(t, fmt.Sprintf("targets:\n  - {name: dms, kind: http, url: %q}\n", target.URL+"/ok"), pipelineOptions{})
	if code := p.get("/v1/documents", nil); code == http.StatusNotFound {
		t.Skip("this server has no documents routes (docs-core not merged)")
	}
	c := p.client()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	write := func(rel, content string) {
		path := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, rel := range []string{"a.txt", "reports/b.txt", "reports/été.txt"} {
		write(rel, "first content of "+rel)
	}
	run := func(batch string) push.Result {
		t.Helper()
		res, err := push.Run(ctx, c, push.Options{Paths: []string{dir}, Target: "dms", Batch: batch, Documents: true,
			Wait: true, PollInterval: 50 * time.Millisecond})
		if err != nil {
			t.Fatalf("push into %s: %v", batch, err)
		}
		return res
	}
	if res := run("sync-1"); res.Uploaded != 3 {
		t.Fatalf("first push: %+v", res)
	}
	write("reports/b.txt", "second content")
	if res := run("sync-1"); res.Uploaded != 1 || res.Skipped != 2 {
		t.Errorf("second push: %d uploaded, %d skipped; want 1 and 2", res.Uploaded, res.Skipped)
	}
	if res := run("sync-2"); res.Uploaded != 0 || res.Skipped != 3 {
		t.Errorf("an unchanged push into another batch: %d uploaded, %d skipped; want 0 and 3", res.Uploaded, res.Skipped)
	}

	var keys []string
	var b apitypes.Document
	err := c.EachDocument(ctx, client.DocumentFilter{Target: "dms", Limit: 2}, func(d apitypes.Document) error {
		keys = append(keys, d.Key)
		if d.Key == "reports/b.txt" {
			b = d
		}
		return nil
	})
	if err != nil || strings.Join(keys, ",") != "a.txt,reports/b.txt,reports/été.txt" {
		t.Fatalf("documents: %v %v", keys, err)
	}
	page, err := c.Documents(ctx, client.DocumentFilter{Target: "dms", KeyPrefix: "reports/", Limit: 1})
	if err != nil || len(page.Documents) != 1 || page.NextCursor == "" {
		t.Errorf("a page of one under reports/: %+v %v", page, err)
	}
	d, err := c.Document(ctx, b.ID)
	if err != nil || d.Versions != 2 || len(d.History) != 2 || d.Current == nil || d.Current.Version != 2 {
		t.Fatalf("document reports/b.txt: %+v %v", d, err)
	}
	if d.History[0].SHA256 != sha([]byte("first content of reports/b.txt")) || d.History[1].SHA256 != sha([]byte("second content")) {
		t.Errorf("history: %+v", d.History)
	}
	job, err := c.Job(ctx, d.History[1].Job)
	if err != nil || job.Document != d.ID || job.Version != 2 || job.DocumentKey != "reports/b.txt" {
		t.Errorf("version 2's job: %+v %v", job, err)
	}

	dash := newDashboard(t, p)
	br := newBrowser(t, dash.URL)
	br.login(p.key)
	_, html := br.do("GET", "/ui/documents/"+d.ID, nil, nil)
	for _, want := range []string{"<h1>reports/b.txt</h1>", "<strong>v2 content</strong>", d.History[1].SHA256[:12]} {
		if !strings.Contains(html, want) {
			t.Errorf("the document page lacks %s", want)
		}
	}
	_, html = br.do("GET", "/ui/jobs/"+job.ID, nil, nil)
	if !strings.Contains(html, `href="/ui/documents/`+d.ID+`"`) {
		t.Error("the job page does not link to its document")
	}
}
