package ui

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/ferry-relay/ferry/apitypes"
	"github.com/ferry-relay/ferry/client"
)

// documentsPageSize is the documents list's page.
const documentsPageSize = 50

type documentsData struct {
	Filter  client.DocumentFilter
	Targets []string
	States  []string
	Docs    []apitypes.Document
	Next    string
	First   string
	Paged   bool
}

// documentsPage lists documents by key (GET /v1/documents), with the
// filters of that route and keyset pages.
func (u *UI) documentsPage(w http.ResponseWriter, q *request) {
	v := q.r.URL.Query()
	f := client.DocumentFilter{Target: v.Get("target"), Batch: v.Get("batch"), KeyPrefix: v.Get("key_prefix"),
		State: v.Get("state"), Cursor: v.Get("cursor"), Limit: documentsPageSize}
	if f.State != apitypes.DocumentActive && f.State != apitypes.DocumentDeleted {
		f.State = ""
	}
	list, err := q.api.Documents(q.ctx(), f)
	if err != nil {
		u.apiError(w, q, err)
		return
	}
	ts, err := q.api.Targets(q.ctx())
	if err != nil {
		u.apiError(w, q, err)
		return
	}
	d := documentsData{Filter: f, States: []string{apitypes.DocumentActive, apitypes.DocumentDeleted},
		Docs: list.Documents, Paged: f.Cursor != ""}
	for _, t := range ts {
		d.Targets = append(d.Targets, t.Name)
	}
	if f.Target != "" && !slices.Contains(d.Targets, f.Target) {
		d.Targets = append(d.Targets, f.Target)
	}
	base := url.Values{}
	for k, val := range map[string]string{"target": f.Target, "batch": f.Batch, "key_prefix": f.KeyPrefix, "state": f.State} {
		if val != "" {
			base.Set(k, val)
		}
	}
	d.First = "/ui/documents?" + base.Encode()
	if list.NextCursor != "" {
		base.Set("cursor", list.NextCursor)
		d.Next = "/ui/documents?" + base.Encode()
	}
	u.render(w, q.r, http.StatusOK, "documents", q, page{Title: "Documents", Nav: "documents", Data: d})
}

type documentData struct {
	Doc apitypes.Document
	// History is the versions newest first, as a timeline reads.
	History []apitypes.DocumentVersion
	Remote  [][2]string
}

// documentPage shows one document and its versions (GET
// /v1/documents/{id}).
func (u *UI) documentPage(w http.ResponseWriter, q *request) {
	doc, err := q.api.Document(q.ctx(), q.r.PathValue("id"))
	if err != nil {
		u.apiError(w, q, err)
		return
	}
	d := documentData{Doc: doc, History: slices.Clone(doc.History)}
	slices.Reverse(d.History)
	for k, v := range doc.Remote {
		d.Remote = append(d.Remote, [2]string{k, v})
	}
	slices.SortFunc(d.Remote, func(a, b [2]string) int { return strings.Compare(a[0], b[0]) })
	u.render(w, q.r, http.StatusOK, "document", q, page{Title: "Document " + doc.Key, Nav: "documents", Data: d})
}

// deleteDocument records the document's deletion at its target (DELETE
// /v1/documents/{id}): the API decides whether the key's role may, and
// whether the target's system has a delete.
func (u *UI) deleteDocument(w http.ResponseWriter, q *request) {
	id := q.r.PathValue("id")
	job, err := q.api.DeleteDocumentByID(q.ctx(), id)
	if err != nil {
		u.actionError(w, q, err)
		return
	}
	u.done(w, q, "/ui/documents/"+url.PathEscape(id), fmt.Sprintf("Delete recorded: version %d (%s).", job.Version, job.Status))
}
