package workfront

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Versions and deletes of documents (issue 21). From "Workfront REST API
// basics" (workfront-rest-api-basics.fr, "Opérations"): POST inserts an
// object, DELETE on an object's URI deletes it, GET .../search filters by
// field=value. A new version of a document is an object of its own,
// DocumentVersion (ObjCode DOCV, from Workfront's API Explorer, which the
// basics page points to for object codes and fields): POST docv with
// documentID, handle (an upload's, as for a document) and fileName adds a
// version to the document and makes it current; GET docv/search lists
// versions by field. The version label ("v2.0"), ext and fileName are free
// text chosen by the client.
//
//	POST   docv          documentID, handle, fileName, version, ext as
//	                     parameters or in updates={json} → {"data":{"ID",...}}
//	GET    docv/search   ?documentID=&version=&handle=&fileName=&ID=
//	DELETE document/{id} → {"data":{"success":true}}; 404 NotFound if none
//
// Faults: steps "docv", "docv search" and "delete" take Inject like the
// others (LoseAnswer among them); RefuseLookup hits the next search of
// either kind.

// StoredVersion is a version of a document in the fake.
type StoredVersion struct {
	ID         string    `json:"ID"`
	DocumentID string    `json:"documentID"`
	Version    string    `json:"version,omitempty"`
	FileName   string    `json:"fileName"`
	Ext        string    `json:"ext,omitempty"`
	Handle     string    `json:"handle"`
	Size       int64     `json:"size"`
	SHA256     string    `json:"sha256"`
	Created    time.Time `json:"created"`
}

// DocumentVersions maps each document the fake holds to the SHA-256 of its
// versions, oldest first.
func (s *Server) DocumentVersions() map[string][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string][]string{}
	for _, d := range s.docs {
		for _, v := range d.Versions {
			out[d.ID] = append(out[d.ID], v.SHA256)
		}
	}
	return out
}

// VersionSteps are the steps of a new version: an upload, then docv.
func (s *Server) VersionSteps() []string { return []string{StepUpload, StepDocv} }

// DeleteSteps are the steps of a delete.
func (s *Server) DeleteSteps() []string { return []string{StepDelete} }

// docvInput is what docv creation accepts.
type docvInput struct {
	DocumentID string `json:"documentID"`
	Handle     string `json:"handle"`
	FileName   string `json:"fileName"`
	Version    string `json:"version"`
	Ext        string `json:"ext"`
}

// parseDocvInput reads the plain parameters, then updates={json},
// whose fields win; an unknown field is refused as Workfront refuses a
// field its API model lacks.
func parseDocvInput(form map[string][]string) (docvInput, error) {
	get := func(k string) string {
		if v := form[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	in := docvInput{DocumentID: get("documentID"), Handle: get("handle"), FileName: get("fileName"),
		Version: get("version"), Ext: get("ext")}
	if u := get("updates"); u != "" {
		if err := decodeStrict(u, &in); err != nil {
			var uf errUnknownField
			if errors.As(err, &uf) {
				return in, fmt.Errorf("APIModel V15_0 does not support field %s (DocumentVersion)", string(uf))
			}
			return in, err
		}
	}
	return in, nil
}

// serveDocv adds a version to a document from an unclaimed handle.
func (s *Server) serveDocv(w http.ResponseWriter, r *http.Request, rec *Request) {
	if err := r.ParseForm(); err != nil {
		writeError(w, r, rec, http.StatusBadRequest, ClassInvalidParameter, "unreadable parameters")
		return
	}
	in, err := parseDocvInput(r.Form)
	if err != nil {
		class := ClassInvalidParameter
		if strings.HasPrefix(err.Error(), "APIModel") {
			class = ClassIllegalArgument
		}
		writeError(w, r, rec, http.StatusUnprocessableEntity, class, err.Error())
		return
	}
	rec.Handle = in.Handle
	s.mu.Lock()
	v, status, class, msg := s.addVersion(in)
	s.mu.Unlock()
	if status != http.StatusOK {
		writeError(w, r, rec, status, class, msg)
		return
	}
	rec.DocumentID = v.DocumentID
	writeData(w, versionJSON(v))
}

// addVersion validates in and stores the version; s.mu is held.
func (s *Server) addVersion(in docvInput) (StoredVersion, int, string, string) {
	invalid := func(msg string) (StoredVersion, int, string, string) {
		return StoredVersion{}, http.StatusUnprocessableEntity, ClassInvalidParameter, msg
	}
	i := slices.IndexFunc(s.docs, func(d StoredDocument) bool { return d.ID == in.DocumentID })
	switch {
	case in.DocumentID == "":
		return invalid("documentID is required")
	case i < 0:
		return StoredVersion{}, http.StatusNotFound, ClassNotFound, "DOCU with ID " + in.DocumentID + " not found"
	case in.FileName == "":
		return invalid("fileName is required")
	case in.Handle == "":
		return invalid("handle is required")
	case s.claimed[in.Handle]:
		return invalid(fmt.Sprintf("handle %s was already used", in.Handle))
	}
	up, ok := s.uploads[in.Handle]
	if !ok || s.opts.Now().After(up.created.Add(s.opts.HandleTTL)) {
		delete(s.uploads, in.Handle)
		return invalid(fmt.Sprintf("handle %s is unknown or has expired", in.Handle))
	}
	delete(s.uploads, in.Handle)
	s.claimed[in.Handle] = true
	v := StoredVersion{
		ID: newID(), DocumentID: in.DocumentID, Version: in.Version, FileName: in.FileName, Ext: in.Ext,
		Handle: in.Handle, Size: up.size, SHA256: up.sha256, Created: s.opts.Now(),
	}
	d := &s.docs[i]
	d.Versions = append(d.Versions, v)
	d.CurrentVersionID, d.Version, d.FileName, d.Ext = v.ID, v.Version, v.FileName, v.Ext
	d.Handle, d.Size, d.SHA256, d.ContentType = v.Handle, v.Size, v.SHA256, up.contentType
	return v, http.StatusOK, "", ""
}

// versionFields are the version fields docv search filters on.
var versionFields = []string{"ID", "documentID", "version", "handle", "fileName"}

// serveDocvSearch lists the versions whose fields equal the filters.
func (s *Server) serveDocvSearch(w http.ResponseWriter, r *http.Request, rec *Request) {
	filters, ok := searchFilters(w, r, rec, versionFields, "DocumentVersion")
	if !ok {
		return
	}
	s.mu.Lock()
	found := []map[string]string{}
	for _, d := range s.docs {
		for _, v := range d.Versions {
			if j := versionJSON(v); matches(j, filters) {
				found = append(found, j)
			}
		}
	}
	s.mu.Unlock()
	writeData(w, found)
}

// serveDelete deletes a document and its versions.
func (s *Server) serveDelete(w http.ResponseWriter, r *http.Request, rec *Request, id string) {
	s.mu.Lock()
	i := slices.IndexFunc(s.docs, func(d StoredDocument) bool { return d.ID == id })
	if i >= 0 {
		s.docs = slices.Delete(s.docs, i, i+1)
		s.deleted++
	}
	s.mu.Unlock()
	if i < 0 {
		writeError(w, r, rec, http.StatusNotFound, ClassNotFound, "DOCU with ID "+id+" not found")
		return
	}
	rec.DocumentID = id
	writeData(w, map[string]bool{"success": true})
}

// versionJSON is a version as the API answers it.
func versionJSON(v StoredVersion) map[string]string {
	return map[string]string{
		"ID": v.ID, "objCode": "DOCV", "documentID": v.DocumentID, "version": v.Version,
		"fileName": v.FileName, "ext": v.Ext, "handle": v.Handle,
	}
}
