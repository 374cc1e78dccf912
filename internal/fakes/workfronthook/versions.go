package workfronthook

// Versions of a document (issue 21). Spec 1.1 ("Chargement de fichiers via
// Document Webhooks", workfront-document-webhooks-upload.fr) adds to
// uploadInit the Workfront document's id (documentId) and its version's
// id (documentVersionId), so that a provider can tell versions of one
// document apart; it says no more. The fake, as a versioning store would:
//   - uploadInit naming the documentId of a document it holds, with a
//     documentVersionId it has not seen, adds a version to that document
//     and answers its metadata (the same provider id): no new document;
//   - uploadInit naming a documentVersionId it has seen for that document
//     is a repeat (its answer was lost) and changes nothing;
//   - upload writes the latest version (again, for a repeated PUT).
// Without a documentId every uploadInit creates a document, as before.

// FileVersion is a version of a document in the fake.
type FileVersion struct {
	// VersionID is the documentVersionId uploadInit gave ("" if none).
	VersionID string `json:"documentVersionId,omitempty"`
	// SHA256 and Size describe its bytes, once uploaded.
	SHA256 string `json:"sha256,omitempty"`
	Size   int64  `json:"size"`
	// Uploads counts the successful PUTs of its bytes.
	Uploads int `json:"uploads"`
}

// versionLocked returns the document whose documentId is docID, with a
// version versionID added unless it has one, or nil when docID is empty
// or names no document; s.mu is held.
func (s *Server) versionLocked(docID, versionID string) *File {
	if docID == "" {
		return nil
	}
	var f *File
	for i := len(s.order) - 1; i >= 0 && f == nil; i-- {
		if g, ok := s.files[s.order[i]]; ok && g.DocumentID == docID {
			f = g
		}
	}
	if f == nil {
		return nil
	}
	for _, v := range f.Versions {
		if versionID != "" && v.VersionID == versionID {
			return f
		}
	}
	f.Versions = append(f.Versions, FileVersion{VersionID: versionID})
	f.DocumentVersionID = versionID
	f.DateModified = s.opts.Now().UTC()
	return f
}

// wroteVersion records an upload's bytes as the latest version's.
func (f *File) wroteVersion(sum string, size int64) {
	if len(f.Versions) == 0 {
		f.Versions = []FileVersion{{}}
	}
	v := &f.Versions[len(f.Versions)-1]
	v.SHA256, v.Size = sum, size
	v.Uploads++
}

// DocumentVersions maps each uploaded document, by its provider id, to
// the SHA-256 of its uploaded versions, oldest first.
func (s *Server) DocumentVersions() map[string][]string {
	out := map[string][]string{}
	for _, f := range s.Files() {
		for _, v := range f.Versions {
			if v.Uploads > 0 {
				out[f.ID] = append(out[f.ID], v.SHA256)
			}
		}
	}
	return out
}

// VersionSteps are the steps of a later version: uploadInit, then upload.
func (s *Server) VersionSteps() []string { return []string{StepUploadInit, StepUpload} }

// DeleteSteps: the upload API has no delete.
func (s *Server) DeleteSteps() []string { return nil }
