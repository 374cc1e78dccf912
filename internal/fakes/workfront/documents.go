package workfront

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// Documents: POST /document creates a document from an upload's handle
// (its parameters plain or in updates={json}), GET /document/{id} reads
// one. Search is in search.go, versions and delete in versions.go.

// docInput is what document creation accepts, as parameters or in
// updates.
type docInput struct {
	Name           string        `json:"name"`
	Handle         string        `json:"handle"`
	DocObjCode     string        `json:"docObjCode"`
	ObjID          string        `json:"objID"`
	ExtRefID       string        `json:"extRefID"`
	Description    string        `json:"description"`
	CurrentVersion *versionInput `json:"currentVersion"`
}

type versionInput struct {
	Version  string `json:"version"`
	FileName string `json:"fileName"`
	Ext      string `json:"ext"`
}

// errUnknownField is an updates field the Document model lacks.
type errUnknownField string

func (e errUnknownField) Error() string {
	return fmt.Sprintf("APIModel V15_0 does not support field %s (Document)", string(e))
}

// parseDocInput reads the plain parameters, then updates={json}, whose
// fields win. An unknown field in updates is refused, as Workfront
// refuses a field its API model lacks.
func parseDocInput(form map[string][]string) (docInput, error) {
	get := func(k string) string {
		if v := form[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	in := docInput{
		Name: get("name"), Handle: get("handle"), DocObjCode: get("docObjCode"),
		ObjID: get("objID"), ExtRefID: get("extRefID"), Description: get("description"),
	}
	updates := get("updates")
	if updates == "" {
		return in, nil
	}
	return in, decodeStrict(updates, &in)
}

// decodeStrict decodes updates={json} into v, refusing a field v lacks
// (errUnknownField).
func decodeStrict(updates string, v any) error {
	dec := json.NewDecoder(strings.NewReader(updates))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if field, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			return errUnknownField(strings.Trim(field, `"`))
		}
		return fmt.Errorf("updates is not a valid JSON object: %w", err)
	}
	return nil
}

// serveCreate creates a document from an unclaimed handle.
func (s *Server) serveCreate(w http.ResponseWriter, r *http.Request, rec *Request) {
	if err := r.ParseForm(); err != nil {
		writeError(w, r, rec, http.StatusBadRequest, ClassInvalidParameter, "unreadable parameters")
		return
	}
	in, err := parseDocInput(r.Form)
	if err != nil {
		class := ClassInvalidParameter
		if errors.As(err, new(errUnknownField)) {
			class = ClassIllegalArgument
		}
		writeError(w, r, rec, http.StatusUnprocessableEntity, class, err.Error())
		return
	}
	rec.Handle = in.Handle
	s.mu.Lock()
	doc, status, class, msg := s.create(in)
	s.mu.Unlock()
	if status != http.StatusOK {
		writeError(w, r, rec, status, class, msg)
		return
	}
	rec.DocumentID = doc.ID
	writeData(w, docJSON(doc))
}

// create validates in and stores the document; s.mu is held. It returns
// the status, class and message of a refusal.
func (s *Server) create(in docInput) (StoredDocument, int, string, string) {
	invalid := func(msg string) (StoredDocument, int, string, string) {
		return StoredDocument{}, http.StatusUnprocessableEntity, ClassInvalidParameter, msg
	}
	switch {
	case in.Name == "":
		return invalid("name is required")
	case in.DocObjCode == "":
		return invalid("docObjCode is required")
	case !slices.Contains(DocObjCodes, in.DocObjCode):
		return invalid(fmt.Sprintf("invalid docObjCode %q: want one of %v", in.DocObjCode, DocObjCodes))
	case in.ObjID == "":
		return invalid("objID is required")
	case s.opts.Objects[in.ObjID] != in.DocObjCode:
		return StoredDocument{}, http.StatusNotFound, ClassNotFound,
			fmt.Sprintf("%s with ID %s not found", in.DocObjCode, in.ObjID)
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
	doc := StoredDocument{
		ID: newID(), Name: in.Name, DocObjCode: in.DocObjCode, ObjID: in.ObjID,
		ExtRefID: in.ExtRefID, Description: in.Description, FileName: in.Name,
		Handle: in.Handle, ContentType: up.contentType, Size: up.size, SHA256: up.sha256,
		Created: s.opts.Now(),
	}
	if v := in.CurrentVersion; v != nil {
		doc.Version, doc.Ext = v.Version, v.Ext
		doc.FileName = cmp.Or(v.FileName, in.Name)
	}
	first := StoredVersion{
		ID: newID(), DocumentID: doc.ID, Version: doc.Version, FileName: doc.FileName, Ext: doc.Ext,
		Handle: doc.Handle, Size: doc.Size, SHA256: doc.SHA256, Created: doc.Created,
	}
	doc.CurrentVersionID, doc.Versions = first.ID, []StoredVersion{first}
	s.docs = append(s.docs, doc)
	return doc, http.StatusOK, "", ""
}

func (s *Server) serveGet(w http.ResponseWriter, r *http.Request, rec *Request, id string) {
	s.mu.Lock()
	i := slices.IndexFunc(s.docs, func(d StoredDocument) bool { return d.ID == id })
	var doc StoredDocument
	if i >= 0 {
		doc = s.docs[i]
	}
	s.mu.Unlock()
	if i < 0 {
		writeError(w, r, rec, http.StatusNotFound, ClassNotFound, "DOCU with ID "+id+" not found")
		return
	}
	writeData(w, docJSON(doc))
}

// docJSON is a document as the API answers it.
func docJSON(d StoredDocument) map[string]string {
	return map[string]string{
		"ID": d.ID, "name": d.Name, "objCode": "DOCU", "docObjCode": d.DocObjCode,
		"objID": d.ObjID, "extRefID": d.ExtRefID, "description": d.Description,
		"currentVersionID": d.CurrentVersionID,
	}
}
