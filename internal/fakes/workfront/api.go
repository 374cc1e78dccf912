package workfront

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"slices"
	"strings"
)

// serveAPI answers one request under APIPath: the concurrency limit, the
// URI limit and injected faults first, then the endpoint.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	rec := Request{
		Time:          s.opts.Now(),
		Method:        effectiveMethod(r),
		Path:          r.URL.Path,
		QueryKeys:     queryKeys(r),
		ContentType:   r.Header.Get("Content-Type"),
		ContentLength: r.ContentLength,
	}
	step, id := route(r.URL.Path, rec.Method)
	rec.Step = step
	sw := &statusWriter{ResponseWriter: w}
	// Requests are listed in the order they arrived, whenever they end.
	at := s.record(rec)
	entered := s.enter()
	// finish completes the record and leaves before the connection is
	// dropped, so that a client seeing the drop sees both.
	finished := false
	finish := func() {
		if finished {
			return
		}
		finished = true
		if entered {
			s.leave()
		}
		rec.Status = sw.status
		s.update(at, rec)
	}
	defer finish()
	if !entered {
		writeError(sw, r, &rec, http.StatusTooManyRequests, ClassTooManyRequests,
			fmt.Sprintf("more than %d concurrent API requests", s.opts.MaxConcurrent))
		return
	}

	if len(r.RequestURI) > MaxURIBytes {
		writeError(sw, r, &rec, http.StatusRequestURITooLong, ClassInvalidParameter, "request URI too long")
		return
	}
	if step == "" {
		writeError(sw, r, &rec, http.StatusNotFound, ClassNotFound, "no such endpoint: "+r.URL.Path)
		return
	}
	var dropAfter bool
	if f, ok := s.take(step); ok {
		rec.Fault = f.Mode
		switch f.Mode {
		case ModeDrop:
			finish()
			drop(w)
			return
		case ModeDropAfter:
			dropAfter = true
		case ModeExpire:
			s.ExpireCredentials()
		default: // ModeStatus, ModeError200
			f.answer(sw, r, &rec)
			return
		}
	}
	var out http.ResponseWriter = sw
	if dropAfter {
		out = &discardWriter{header: http.Header{}}
	}
	s.serveStep(out, r, &rec, step, id)
	if dropAfter {
		finish()
		drop(w)
	}
}

// serveStep checks the method and the credentials, then serves the step.
func (s *Server) serveStep(w http.ResponseWriter, r *http.Request, rec *Request, step, id string) {
	allowed := map[string][]string{
		StepLogin:    {http.MethodGet, http.MethodPost},
		StepLogout:   {http.MethodGet, http.MethodPost},
		StepUpload:   {http.MethodPost},
		StepDocument: {http.MethodPost},
		StepSearch:   {http.MethodGet},
		StepGet:      {http.MethodGet},
		StepDelete:   {http.MethodDelete},
		StepDocv:     {http.MethodPost},
		StepDocvFind: {http.MethodGet},
	}[step]
	// The method parameter cannot turn a GET into a file upload: the file
	// travels in a POST body.
	if !slices.Contains(allowed, rec.Method) || (step == StepUpload && r.Method != http.MethodPost) {
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		writeError(w, r, rec, http.StatusMethodNotAllowed, ClassInvalidParameter,
			fmt.Sprintf("method %s is not supported by %s", rec.Method, step))
		return
	}
	if step == StepLogin {
		s.serveLogin(w, r, rec)
		return
	}
	rec.Auth = s.authenticate(r)
	if rec.Auth != "session" && rec.Auth != "apiKey" {
		writeError(w, r, rec, http.StatusUnauthorized, ClassAuthentication, "You are not currently logged in")
		return
	}
	switch step {
	case StepLogout:
		s.serveLogout(w, r)
	case StepUpload:
		s.serveUpload(w, r, rec)
	case StepDocument:
		s.serveCreate(w, r, rec)
	case StepSearch:
		s.serveSearch(w, r, rec)
	case StepGet:
		s.serveGet(w, r, rec, id)
	case StepDelete:
		s.serveDelete(w, r, rec, id)
	case StepDocv:
		s.serveDocv(w, r, rec)
	case StepDocvFind:
		s.serveDocvSearch(w, r, rec)
	}
}

// route names the step of an API path (and of the effective method, for
// an object's URI: GET reads it, DELETE deletes it) and the object ID it
// carries, if any; "" for a path the fake does not serve.
func route(path, method string) (step, id string) {
	rest, ok := strings.CutPrefix(path, APIPath+"/")
	if !ok {
		return "", ""
	}
	parts := strings.Split(rest, "/")
	isDoc := strings.EqualFold(parts[0], "document") || strings.EqualFold(parts[0], "docu")
	isDocv := strings.EqualFold(parts[0], "docv") || strings.EqualFold(parts[0], "documentversion")
	switch {
	case len(parts) == 1 && isDocv:
		return StepDocv, ""
	case len(parts) == 2 && isDocv && parts[1] == "search":
		return StepDocvFind, ""
	case len(parts) == 2 && isDoc && parts[1] != "" && parts[1] != "search" && method == http.MethodDelete:
		return StepDelete, parts[1]
	case len(parts) == 1 && parts[0] == "login":
		return StepLogin, ""
	case len(parts) == 1 && parts[0] == "logout":
		return StepLogout, ""
	case len(parts) == 1 && parts[0] == "upload":
		return StepUpload, ""
	case len(parts) == 1 && isDoc:
		return StepDocument, ""
	case len(parts) == 2 && isDoc && parts[1] == "search":
		return StepSearch, ""
	case len(parts) == 2 && isDoc && parts[1] != "":
		return StepGet, parts[1]
	}
	return "", ""
}

// effectiveMethod is the method parameter, which overrides the HTTP
// method in Workfront, or else the HTTP method.
func effectiveMethod(r *http.Request) string {
	return strings.ToUpper(cmp.Or(r.URL.Query().Get("method"), r.Method))
}

// authenticate says which credential r carries: "session" or "apiKey" when
// valid, "invalid" when one is given but unknown, "none" otherwise. A
// session wins over an API key.
func (s *Server) authenticate(r *http.Request) string {
	sid := cmp.Or(r.Header.Get("SessionID"), r.URL.Query().Get("sessionID"))
	key := cmp.Or(r.URL.Query().Get("apiKey"), r.Header.Get("apiKey"))
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.refusingLocked() && (sid != "" || key != ""):
		return "invalid"
	case sid != "" && s.sessions[sid]:
		return "session"
	case sid != "":
		return "invalid"
	case key != "" && key == s.opts.APIKey:
		return "apiKey"
	case key != "":
		return "invalid"
	}
	return "none"
}

func (s *Server) serveLogin(w http.ResponseWriter, r *http.Request, rec *Request) {
	rec.Auth = "none"
	if err := r.ParseForm(); err != nil {
		writeError(w, r, rec, http.StatusBadRequest, ClassInvalidParameter, "unreadable parameters")
		return
	}
	if r.Form.Get("username") != s.opts.Username || r.Form.Get("password") != s.opts.Password || s.refusing() {
		writeError(w, r, rec, http.StatusUnauthorized, ClassAuthentication, "Invalid username or password.")
		return
	}
	sid := newID()
	s.mu.Lock()
	s.sessions[sid] = true
	s.mu.Unlock()
	writeData(w, map[string]string{"sessionID": sid, "userID": UserID})
}

func (s *Server) serveLogout(w http.ResponseWriter, r *http.Request) {
	sid := cmp.Or(r.Header.Get("SessionID"), r.URL.Query().Get("sessionID"))
	s.mu.Lock()
	delete(s.sessions, sid)
	s.mu.Unlock()
	writeData(w, map[string]bool{"success": true})
}

// serveUpload streams the multipart body, hashing the uploadedFile part,
// and answers a handle for it.
func (s *Server) serveUpload(w http.ResponseWriter, r *http.Request, rec *Request) {
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		writeError(w, r, rec, http.StatusBadRequest, ClassInvalidParameter,
			"upload needs a multipart/form-data body with the file in uploadedFile")
		return
	}
	mr := multipart.NewReader(r.Body, params["boundary"])
	var got *upload
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			writeError(w, r, rec, http.StatusBadRequest, ClassInvalidParameter, "malformed multipart body: "+err.Error())
			return
		}
		if got != nil || part.FormName() != "uploadedFile" || part.FileName() == "" {
			_, _ = io.Copy(io.Discard, part)
			continue
		}
		h := sha256.New()
		n, err := io.Copy(h, part)
		if err != nil {
			writeError(w, r, rec, http.StatusBadRequest, ClassInvalidParameter, "malformed multipart body: "+err.Error())
			return
		}
		got = &upload{
			fileName:    part.FileName(),
			contentType: part.Header.Get("Content-Type"),
			size:        n,
			sha256:      hex.EncodeToString(h.Sum(nil)),
			created:     s.opts.Now(),
		}
	}
	if got == nil {
		writeError(w, r, rec, http.StatusBadRequest, ClassInvalidParameter, "no file in the uploadedFile part")
		return
	}
	handle := newID()
	s.mu.Lock()
	s.uploads[handle] = *got
	s.mu.Unlock()
	rec.FileName, rec.Size, rec.SHA256, rec.Handle = got.fileName, got.size, got.sha256, handle
	writeData(w, map[string]string{"handle": handle})
}

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

// statusWriter remembers the status written.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// discardWriter takes the answer of a request whose connection is then
// dropped.
type discardWriter struct{ header http.Header }

func (w *discardWriter) Header() http.Header         { return w.header }
func (w *discardWriter) WriteHeader(int)             {}
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }

// drop closes the connection without answering.
func drop(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	_ = conn.Close()
}
