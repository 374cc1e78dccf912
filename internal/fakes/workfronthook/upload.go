package workfronthook

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"path"
	"slices"
)

// The upload protocol (Document Webhooks spec, "Chargement de fichiers via
// Document Webhooks"): uploadInit creates the document, upload carries its
// bytes.

// uploadInit answers POST /uploadInit: it creates the document, or adds
// a version to one it holds (versions.go), and answers its metadata.
func (s *Server) uploadInit(w http.ResponseWriter, r *http.Request, rec *Request) {
	q := r.URL.Query()
	parent, name := q.Get("parentId"), q.Get("filename")
	switch {
	case parent == "":
		s.replyError(w, rec, http.StatusBadRequest, "parentId is required")
		return
	case name == "":
		s.replyError(w, rec, http.StatusBadRequest, "filename is required")
		return
	case len(s.opts.Folders) > 0 && !slices.Contains(s.opts.Folders, parent):
		s.replyError(w, rec, http.StatusNotFound, "parent folder not found")
		return
	}
	fault := s.takeFault(StepUploadInit)
	if s.faultBefore(w, r, rec, fault) {
		return
	}

	s.mu.Lock()
	if f := s.versionLocked(q.Get("documentId"), q.Get("documentVersionId")); f != nil {
		// A version of a document the provider holds (versions.go).
		meta := metadataOf(r, *f)
		s.mu.Unlock()
		s.answerInit(w, rec, fault, meta)
		return
	}
	if s.opts.UniqueNames && s.nameTakenLocked(parent, name) {
		s.mu.Unlock()
		s.replyError(w, rec, http.StatusConflict, "a file of that name exists in the folder")
		return
	}
	f := &File{
		ID:                newID(),
		ParentID:          parent,
		Title:             name,
		DocumentID:        q.Get("documentId"),
		DocumentVersionID: q.Get("documentVersionId"),
		MimeType:          guessType(name),
		DateModified:      s.opts.Now().UTC(),
		Versions:          []FileVersion{{VersionID: q.Get("documentVersionId")}},
	}
	s.files[f.ID] = f
	s.order = append(s.order, f.ID)
	s.inits++
	meta := metadataOf(r, *f)
	s.mu.Unlock()
	s.answerInit(w, rec, fault, meta)
}

// answerInit answers uploadInit with the file's metadata, or loses the
// answer as the fault says.
func (s *Server) answerInit(w http.ResponseWriter, rec *Request, fault *Fault, meta Metadata) {
	if fault != nil && fault.Mode == ModeDropAfter {
		s.drop(w, rec, fault.Mode)
		return
	}
	s.reply(w, rec, http.StatusOK, meta)
}

func (s *Server) nameTakenLocked(parent, name string) bool {
	for _, f := range s.files {
		if f.Uploads > 0 && f.ParentID == parent && f.Title == name {
			return true
		}
	}
	return false
}

// upload answers PUT /upload?id=: it hashes the raw bytes as they stream
// in and records them as the document's latest version.
func (s *Server) upload(w http.ResponseWriter, r *http.Request, rec *Request) {
	id := r.URL.Query().Get("id")
	mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch {
	case id == "":
		s.replyError(w, rec, http.StatusBadRequest, "id is required")
		return
	case mediaType == "multipart/form-data":
		s.replyError(w, rec, http.StatusUnsupportedMediaType, "send the raw bytes of the document as the body")
		return
	}
	fault := s.takeFault(StepUpload)
	if fault != nil && fault.Mode == ModeForget {
		s.forgetPlaceholder(id)
		rec.Fault = fault.Mode
	}
	if s.faultBefore(w, r, rec, fault) {
		return
	}
	s.mu.Lock()
	_, known := s.files[id]
	s.mu.Unlock()
	if !known {
		s.replyError(w, rec, http.StatusNotFound, "document not found")
		return
	}
	if s.opts.MaxFileBytes > 0 && r.ContentLength > s.opts.MaxFileBytes {
		s.replyError(w, rec, http.StatusRequestEntityTooLarge, fmt.Sprintf("file larger than %d bytes", s.opts.MaxFileBytes))
		return
	}

	sum, size, err := s.hashBody(r.Body)
	rec.SHA256, rec.Size = sum, size
	switch {
	case errors.Is(err, errTooLarge):
		s.replyError(w, rec, http.StatusRequestEntityTooLarge, fmt.Sprintf("file larger than %d bytes", s.opts.MaxFileBytes))
		return
	case err != nil:
		// The client went away or sent less than it announced.
		s.reply(w, rec, http.StatusOK, uploadResult{Result: resultFail, Message: "Upload Failed"})
		return
	case fault != nil && fault.Mode == ModeResultFail:
		s.reply(w, rec, http.StatusOK, uploadResult{Result: resultFail, Message: "Upload Failed"})
		return
	}

	s.mu.Lock()
	f, known := s.files[id]
	if known {
		f.SHA256, f.Size = sum, size
		f.Uploads++
		f.wroteVersion(sum, size)
		f.DateModified = s.opts.Now().UTC()
		if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err == nil && mt != "application/octet-stream" {
			f.MimeType = mt
		}
	}
	s.mu.Unlock()
	if !known { // forgotten or reset while the bytes streamed in
		s.replyError(w, rec, http.StatusNotFound, "document not found")
		return
	}
	if fault != nil && fault.Mode == ModeDropAfter {
		s.drop(w, rec, fault.Mode)
		return
	}
	s.reply(w, rec, http.StatusOK, uploadResult{Result: resultSuccess})
}

var errTooLarge = errors.New("body over the size limit")

// hashBody reads the body to its end, returning its SHA-256 and size.
func (s *Server) hashBody(body io.Reader) (string, int64, error) {
	h := sha256.New()
	var n int64
	var err error
	if s.opts.MaxFileBytes > 0 {
		n, err = io.Copy(h, io.LimitReader(body, s.opts.MaxFileBytes+1))
		if err == nil && n > s.opts.MaxFileBytes {
			err = errTooLarge
		}
	} else {
		n, err = io.Copy(h, body)
	}
	return hex.EncodeToString(h.Sum(nil)), n, err
}

const (
	resultSuccess = "success"
	resultFail    = "fail"
)

type uploadResult struct {
	Result  string `json:"result"`
	Message string `json:"message,omitempty"`
}

// forgetPlaceholder deletes id if it is still a placeholder, as a provider
// that expires unfinished uploads would.
func (s *Server) forgetPlaceholder(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f, ok := s.files[id]; ok && f.Uploads == 0 {
		delete(s.files, id)
	}
}

func guessType(name string) string {
	if t := mime.TypeByExtension(path.Ext(name)); t != "" {
		if mt, _, err := mime.ParseMediaType(t); err == nil {
			return mt
		}
	}
	return "application/octet-stream"
}
