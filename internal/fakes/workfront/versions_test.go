package workfront

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
)

// A document gains versions by POST docv, found by docv search; DELETE on
// its URI removes it; refusals are Workfront's.
func TestDocumentVersionsAndDelete(t *testing.T) {
	s, c := start(t, Options{})
	auth := c.login()
	h1 := c.upload(auth, "a.txt", []byte("one"))
	a := c.form(http.MethodPost, "document", auth, url.Values{"updates": {updates(t, map[string]any{
		"name": "a", "handle": h1, "docObjCode": "PROJ", "objID": DemoProjectID, "extRefID": "ferry:D1",
		"currentVersion": map[string]string{"version": "v1.0", "fileName": "a.txt"},
	})}})
	var doc struct{ ID, CurrentVersionID string }
	if a.status != 200 || json.Unmarshal(a.Data, &doc) != nil || doc.ID == "" || doc.CurrentVersionID == "" {
		t.Fatalf("create: %d %s %+v", a.status, a.Data, a.Error)
	}
	h2 := c.upload(auth, "a.txt", []byte("two"))
	docv := func(v map[string]any) answer {
		return c.form(http.MethodPost, "docv", auth, url.Values{"updates": {updates(t, v)}})
	}
	a = docv(map[string]any{"documentID": doc.ID, "handle": h2, "fileName": "a.txt", "version": "v2.0"})
	var v struct{ ID, DocumentID, Version string }
	if a.status != 200 || json.Unmarshal(a.Data, &v) != nil || v.DocumentID != doc.ID || v.Version != "v2.0" {
		t.Fatalf("docv: %d %s %+v", a.status, a.Data, a.Error)
	}
	wantError(t, "docv with a spent handle", docv(map[string]any{"documentID": doc.ID, "handle": h2, "fileName": "a.txt"}), 422, ClassInvalidParameter)
	wantError(t, "docv of an unknown document", docv(map[string]any{"documentID": "nope", "handle": c.upload(auth, "b", []byte("b")), "fileName": "b"}), 404, ClassNotFound)
	wantError(t, "docv with an unknown field", docv(map[string]any{"documentID": doc.ID, "docID": doc.ID}), 422, ClassIllegalArgument)
	wantError(t, "docv without credentials", c.form(http.MethodPost, "docv", nil, url.Values{}), 401, ClassAuthentication)

	var found []struct{ ID string }
	a = c.do(http.MethodGet, "docv/search?documentID="+doc.ID+"&version=v2.0", auth, nil)
	if a.status != 200 || json.Unmarshal(a.Data, &found) != nil || len(found) != 1 || found[0].ID != v.ID {
		t.Fatalf("docv search: %d %s", a.status, a.Data)
	}
	a = c.do(http.MethodGet, "docv/search?documentID="+doc.ID, auth, nil)
	if json.Unmarshal(a.Data, &found) != nil || len(found) != 2 {
		t.Fatalf("docv search of the document's versions: %s", a.Data)
	}
	wantError(t, "docv search by an unknown field", c.do(http.MethodGet, "docv/search?colour=red", auth, nil), 422, ClassIllegalArgument)
	a = c.do(http.MethodGet, "document/search?extRefID=ferry:D1", auth, nil)
	if json.Unmarshal(a.Data, &found) != nil || len(found) != 1 || found[0].ID != doc.ID {
		t.Fatalf("search by extRefID: %s", a.Data)
	}
	if got := s.DocumentVersions()[doc.ID]; len(got) != 2 || s.StoredDocuments()[0].CurrentVersionID != v.ID {
		t.Fatalf("versions %v, current %s", got, s.StoredDocuments()[0].CurrentVersionID)
	}

	if a = c.do(http.MethodDelete, "document/"+doc.ID, auth, nil); a.status != 200 {
		t.Fatalf("delete: %d %+v", a.status, a.Error)
	}
	wantError(t, "delete again", c.do(http.MethodDelete, "document/"+doc.ID, auth, nil), 404, ClassNotFound)
	wantError(t, "get after delete", c.do(http.MethodGet, "document/"+doc.ID, auth, nil), 404, ClassNotFound)
	// As Workfront, the method parameter turns a GET into a DELETE.
	h3 := c.upload(auth, "c.txt", []byte("three"))
	a = c.form(http.MethodPost, "document", auth, url.Values{"updates": {updates(t, map[string]any{
		"name": "c", "handle": h3, "docObjCode": "PROJ", "objID": DemoProjectID})}})
	_ = json.Unmarshal(a.Data, &doc)
	if a = c.do(http.MethodGet, "document/"+doc.ID+"?method=delete", auth, nil); a.status != 200 {
		t.Fatalf("delete by method parameter: %d %+v", a.status, a.Error)
	}
	if n := len(s.StoredDocuments()); n != 0 || s.Creations() != 2 {
		t.Fatalf("%d documents left, %d created", n, s.Creations())
	}
}

// LoseAnswer at docv adds the version and drops the answer; RefuseLookup
// fails the next search of either kind.
func TestDocvFaults(t *testing.T) {
	s, c := start(t, Options{})
	auth := c.login()
	s.RefuseLookup()
	wantError(t, "refused docv search", c.do(http.MethodGet, "docv/search?documentID=x", auth, nil), 404, ClassNotFound)
	if a := c.do(http.MethodGet, "document/search?extRefID=x", auth, nil); a.status != 200 {
		t.Fatalf("the refusal hit one search only, yet the next failed: %d", a.status)
	}
	s.Fail(StepDelete, 1, 503, 0)
	wantError(t, "injected delete failure", c.do(http.MethodDelete, "document/x", auth, nil), 503, ClassInternal)
}
