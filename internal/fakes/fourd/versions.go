package fourd

import (
	"slices"
	"strings"

	"github.com/ferry-relay/ferry/internal/fakes/contract"
)

// Documents with versions (issue 21). An attribute holds one file; each
// $method=update that puts a new upload there overwrites it (4D's $upload
// page, 4d-rest-upload.fr: the attribute of the entity now holds the new
// file). The fake remembers what each update put there, so that a test
// sees one document (the attribute) with its versions, and a repeated
// update as a version too many.

// Documents lists the files attached to entities, one per BLOB or picture
// attribute holding an upload, sorted by RemoteID "Dataclass(key)/attribute".
// An upload never attached is not a document.
func (s *Server) Documents() []contract.Document {
	s.mu.Lock()
	defer s.mu.Unlock()
	var docs []contract.Document
	for dc, ents := range s.entities {
		for key, e := range ents {
			for attr, u := range e.files {
				docs = append(docs, contract.Document{
					RemoteID: RemoteID(dc, key, attr), Name: u.name, SHA256: u.sha256, Size: u.size,
				})
			}
		}
	}
	slices.SortFunc(docs, func(a, b contract.Document) int { return strings.Compare(a.RemoteID, b.RemoteID) })
	return docs
}

// RemoteID is how the fake and ferry's connector name a document: the REST
// path, under /rest/, of the attribute that holds it.
func RemoteID(dataclass, key, attribute string) string {
	return dataclass + "(" + key + ")/" + attribute
}

// DocumentVersions maps each attribute that holds a file, by its RemoteID
// "Dataclass(key)/attribute", to the SHA-256 of every file an update put
// there, oldest first.
func (s *Server) DocumentVersions() map[string][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string][]string{}
	for dc, ents := range s.entities {
		for key, e := range ents {
			for attr := range e.files {
				out[RemoteID(dc, key, attr)] = append([]string(nil), e.history[attr]...)
			}
		}
	}
	return out
}

// VersionSteps are the steps of a later version: the stamp is known from
// the version before, so no read.
func (s *Server) VersionSteps() []string { return []string{StepUpload, StepUpdate} }

// DeleteSteps: 4D's REST API documents no delete of a file.
func (s *Server) DeleteSteps() []string { return nil }
