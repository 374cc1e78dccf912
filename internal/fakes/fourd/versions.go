package fourd

// Documents with versions (issue 21). An attribute holds one file; each
// $method=update that puts a new upload there overwrites it (4D's $upload
// page, 4d-rest-upload.fr: the attribute of the entity now holds the new
// file). The fake remembers what each update put there, so that a test
// sees one document (the attribute) with its versions, and a repeated
// update as a version too many.

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
