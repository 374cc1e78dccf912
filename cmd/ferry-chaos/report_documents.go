package main

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/ferry-relay/ferry/internal/fakes/sink"
)

// docsReport is the check of documents with versions (Config.Versions):
// per document, the versions that reached the target are exactly the
// distinct contents ferry accepted and did not supersede, each once, in
// acceptance order, and the target's current content is the last version
// accepted.
type docsReport struct {
	Documents    int // documents with at least one version accepted
	VersionsEach int // versions sent per document
	Accepted     int // versions accepted (jobs of a document)
	Delivered    int // versions the target holds, over every document
	Superseded   int // versions SUPERSEDED: never delivered
	WrongOrder   int // documents whose versions at the target are not the accepted ones in order: must be 0
	Duplicates   int // versions the target holds twice: must be 0
	FinalWrong   int // documents whose current content is not the last version accepted: must be 0
	Strays       int // document paths at the target that no accepted document has: must be 0
}

// docVersion is one accepted version of a document.
type docVersion struct {
	job, status, sha string
	version          int
}

// checkDocuments compares every document's accepted versions (ferry's
// records: the version numbers are the order of acceptance) with what the
// target holds at the document's URL.
func (r *Report) checkDocuments(ctx context.Context, c *cluster, files []file) error {
	d := &docsReport{VersionsEach: c.cfg.Versions}
	r.Docs = d
	rows, err := c.db.Query(ctx, `SELECT d.target, d.key, j.id::text, j.status, j.sha256, j.version
		FROM jobs j JOIN documents d ON d.id = j.document_id WHERE j.op = 'put' ORDER BY d.target, d.key, j.version`)
	if err != nil {
		return fmt.Errorf("documents: %w", err)
	}
	accepted := map[string][]docVersion{} // by document path at the sink
	for rows.Next() {
		var target, key string
		var v docVersion
		if err := rows.Scan(&target, &key, &v.job, &v.status, &v.sha, &v.version); err != nil {
			return fmt.Errorf("documents: %w", err)
		}
		path := docPath(target, key)
		accepted[path] = append(accepted[path], v)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("documents: %w", err)
	}
	held := c.sink.Resources()
	d.Documents = len(accepted)
	for path, versions := range accepted {
		d.checkOne(r, path, versions, held[path])
	}
	for path := range held {
		if _, ok := accepted[path]; !ok {
			d.Strays++
			r.Problems = append(r.Problems, "the target holds a document no accepted version names: "+path)
		}
	}
	if n := len(files) / max(c.cfg.Versions, 1); d.Documents != n {
		r.Problems = append(r.Problems, fmt.Sprintf("%d documents recorded, %d sent", d.Documents, n))
	}
	return nil
}

// checkOne checks one document: the versions its target holds against
// the versions accepted, in version order.
func (d *docsReport) checkOne(r *Report, path string, versions []docVersion, held []sink.Document) {
	d.Accepted += len(versions)
	d.Delivered += len(held)
	var want []docVersion
	for _, v := range versions {
		switch v.status {
		case "SUCCESS":
			want = append(want, v)
		case "SUPERSEDED":
			d.Superseded++
		}
	}
	seen := map[string]int{}
	for _, h := range held {
		seen[h.JobID]++
		if seen[h.JobID] == 2 {
			d.Duplicates++
		}
	}
	same := len(held) == len(want)
	for i := 0; same && i < len(want); i++ {
		same = held[i].SHA256 == want[i].sha && held[i].JobID == want[i].job
	}
	if !same {
		d.WrongOrder++
		if d.WrongOrder <= 5 {
			r.Problems = append(r.Problems, fmt.Sprintf("document %s: the target holds versions %s, want %s (accepted: %s)",
				path, heldList(held), wantList(want), wantList(versions)))
		}
	}
	last := versions[len(versions)-1]
	if len(held) == 0 || held[len(held)-1].SHA256 != last.sha {
		d.FinalWrong++
		if d.FinalWrong <= 5 {
			r.Problems = append(r.Problems, fmt.Sprintf("document %s: the target's content is not version %d (%s, %s)",
				path, last.version, last.sha[:8], last.status))
		}
	}
}

// docPath is the path of a document of a document target at the sink, as
// the http connector puts it (the key path-escaped into the url).
func docPath(target, key string) string {
	prefix := sink.DocumentsPath
	if target == targetDocsSlow {
		prefix = slowDocsPath
	}
	return prefix + url.PathEscape(key)
}

func heldList(held []sink.Document) string {
	var out []string
	for _, h := range held {
		out = append(out, h.SHA256[:8])
	}
	return "[" + strings.Join(out, " ") + "]"
}

func wantList(vs []docVersion) string {
	var out []string
	for _, v := range vs {
		out = append(out, fmt.Sprintf("v%d %s %s", v.version, v.sha[:8], v.status))
	}
	return "[" + strings.Join(out, ", ") + "]"
}

// print adds the documents' rows to the report's table.
func (d *docsReport) print(row func(name string, v any, note string)) {
	if d == nil {
		return
	}
	row("versions accepted", d.Accepted, fmt.Sprintf("of %d documents", d.Documents))
	row("versions at the target", d.Delivered, fmt.Sprintf("%d SUPERSEDED, never delivered", d.Superseded))
	row("documents out of order or incomplete", d.WrongOrder, "versions at the target other than those accepted; must be 0")
	row("versions the target holds twice", d.Duplicates, "must be 0")
	row("documents not at their last version", d.FinalWrong, "must be 0")
	row("documents at the target never accepted", d.Strays, "must be 0")
}
