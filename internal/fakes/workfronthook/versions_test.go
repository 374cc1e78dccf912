package workfronthook

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"slices"
	"testing"
)

// uploadInit naming a known documentId with a new documentVersionId adds
// a version to that document; the same documentVersionId again is a
// repeat; without a documentId every uploadInit is a new document.
func TestVersionsByDocumentVersionID(t *testing.T) {
	s, srv := newServer(t, Options{})
	initV := func(version string) string {
		q := url.Values{"parentId": {"f"}, "filename": {"r.txt"}, "documentId": {"wf-doc"}, "documentVersionId": {version}}
		status, _, v := call(t, srv, http.MethodPost, "/uploadInit?"+q.Encode(), nil, nil)
		id, _ := v["id"].(string)
		if status != http.StatusOK || id == "" {
			t.Fatalf("uploadInit %s: %d %v", version, status, v)
		}
		return id
	}
	sha := func(b string) string { h := sha256.Sum256([]byte(b)); return hex.EncodeToString(h[:]) }
	id := initV("v-1")
	if status, v := put(t, srv, id, []byte("one")); status != http.StatusOK || v["result"] != "success" {
		t.Fatalf("upload v1: %d %v", status, v)
	}
	if again := initV("v-1"); again != id {
		t.Fatalf("repeated uploadInit answered another document %s, want %s", again, id)
	}
	if next := initV("v-2"); next != id {
		t.Fatalf("a new version answered another document %s, want %s", next, id)
	}
	if next := initV("v-2"); next != id { // its answer lost, repeated
		t.Fatal("repeat of v-2 answered another document")
	}
	put(t, srv, id, []byte("two"))
	put(t, srv, id, []byte("two")) // a repeated PUT replaces, adds nothing
	if got := s.DocumentVersions()[id]; !slices.Equal(got, []string{sha("one"), sha("two")}) || s.Creations() != 1 {
		t.Fatalf("versions %v, %d created: want one document, versions one and two", got, s.Creations())
	}
	if other := initDoc(t, srv, "f", "r.txt"); other == id {
		t.Fatal("an uploadInit without documentId reused a document")
	}
}
