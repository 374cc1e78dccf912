package workfronthook

import (
	"net/http"
	"slices"
	"time"

	"github.com/ferry-relay/ferry/internal/fakes/contract"
)

// The documents the fake holds: GET /metadata and the lists a test reads.

// metadata answers GET /metadata?id= with an uploaded document's metadata.
func (s *Server) metadata(w http.ResponseWriter, r *http.Request, rec *Request) {
	id := r.URL.Query().Get("id")
	if id == "" {
		s.replyError(w, rec, http.StatusBadRequest, "id is required")
		return
	}
	s.mu.Lock()
	f, ok := s.files[id]
	var meta Metadata
	if ok {
		meta = metadataOf(r, *f)
		// A placeholder has no file behind it yet, as in the reference
		// provider.
		ok = f.Uploads > 0
	}
	s.mu.Unlock()
	if !ok {
		s.replyError(w, rec, http.StatusNotFound, "document not found")
		return
	}
	s.reply(w, rec, http.StatusOK, meta)
}

// Metadata is a file's metadata as the spec's /metadata endpoint defines
// it; uploadInit answers it too.
type Metadata struct {
	Title        string `json:"title"`
	Kind         string `json:"kind"`
	ID           string `json:"id"`
	ViewLink     string `json:"viewLink"`
	DownloadLink string `json:"downloadLink"`
	MimeType     string `json:"mimeType,omitempty"`
	DateModified string `json:"dateModified"`
	Size         int64  `json:"size"`
	ReadOnly     bool   `json:"readOnly"`
}

// metadataOf describes f. The links point at /view and /download, which
// the fake does not serve: it keeps no bytes.
func metadataOf(r *http.Request, f File) Metadata {
	base := "http://" + r.Host
	if r.TLS != nil {
		base = "https://" + r.Host
	}
	return Metadata{
		Title:        f.Title,
		Kind:         "file",
		ID:           f.ID,
		ViewLink:     base + "/view?id=" + f.ID,
		DownloadLink: base + "/download?id=" + f.ID,
		MimeType:     f.MimeType,
		DateModified: f.DateModified.Format(time.RFC3339),
		Size:         f.Size,
	}
}

// Documents lists the uploaded documents, oldest first.
func (s *Server) Documents() []contract.Document {
	var docs []contract.Document
	for _, f := range s.Files() {
		docs = append(docs, contract.Document{RemoteID: f.ID, Name: f.Title, SHA256: f.SHA256, Size: f.Size})
	}
	return docs
}

// Files lists the uploaded documents in full, oldest first.
func (s *Server) Files() []File {
	return s.list(func(f *File) bool { return f.Uploads > 0 })
}

// Placeholders lists the documents uploadInit created whose bytes never
// arrived, oldest first.
func (s *Server) Placeholders() []File {
	return s.list(func(f *File) bool { return f.Uploads == 0 })
}

func (s *Server) list(keep func(*File) bool) []File {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []File
	for _, id := range s.order {
		if f, ok := s.files[id]; ok && keep(f) {
			g := *f
			g.Versions = slices.Clone(f.Versions)
			out = append(out, g)
		}
	}
	return out
}
