package blueworks

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"
)

// location says which ids an attachment location requires, after the
// FileUpload documentation: ancestorIdField for activity, app, decision and
// instance; parentIdField for all but post.
type location struct{ ancestor, parent bool }

var locations = map[string]location{
	"activity": {ancestor: true, parent: true},
	"app":      {ancestor: true, parent: true},
	"decision": {ancestor: true, parent: true},
	"instance": {ancestor: true, parent: true},
	"policy":   {parent: true},
	"post":     {},
}

// form is what a FileUpload multipart body carried.
type form struct {
	fields map[string]string
	file   bool
	name   string
	ctype  string
	size   int64
	sha256 string
}

// errBadForm is a malformed multipart body: HTTP 400.
var errBadForm = errors.New("malformed multipart/form-data body")

// serveUpload is POST /scr/api/FileUpload.
func (s *Server) serveUpload(w http.ResponseWriter, r *http.Request) {
	rec := Request{
		Step: StepUpload, Method: r.Method, Path: r.URL.Path,
		ContentType: r.Header.Get("Content-Type"),
		Bearer:      strings.HasPrefix(strings.ToLower(r.Header.Get("Authorization")), "bearer "),
		APIVersion:  r.Header.Get("X-IBM-API-Version"),
		OnBehalfOf:  r.Header.Get("X-On-Behalf-Of"),
	}
	refuse := func(code int, errCode, msg string) {
		// Take the rest of the body so the client reads the answer
		// rather than a reset while it is still sending.
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, s.opts.MaxFileBytes+1<<20))
		rec.Status, rec.Error = code, msg
		s.record(rec)
		if code == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			writeOAuthError(w, code, errCode, msg)
			return
		}
		writeError(w, code, errCode, msg)
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		refuse(http.StatusMethodNotAllowed, "method_not_allowed", "The specified method is not allowed. Select POST method.")
		return
	}
	if s.injectFault(w, r, StepUpload) {
		return
	}
	if why := s.authorize(r); why != "" {
		refuse(http.StatusUnauthorized, "invalid_token", why)
		return
	}
	if rec.APIVersion != "" && rec.APIVersion != APIVersion {
		refuse(http.StatusBadRequest, "bad_request", "X-IBM-API-Version must be "+APIVersion)
		return
	}
	user := s.opts.Users[0]
	switch {
	case rec.OnBehalfOf == "" && s.opts.ServiceID:
		refuse(http.StatusBadRequest, "bad_request", "X-On-Behalf-Of is required with Service ID credentials")
		return
	case rec.OnBehalfOf != "" && !slices.Contains(s.opts.Users, rec.OnBehalfOf):
		refuse(http.StatusForbidden, "forbidden", "X-On-Behalf-Of names no user of the account")
		return
	case rec.OnBehalfOf != "":
		user = rec.OnBehalfOf
	}
	if mt, _, _ := mime.ParseMediaType(rec.ContentType); mt != "multipart/form-data" {
		refuse(http.StatusBadRequest, "bad_request", "the body must be multipart/form-data")
		return
	}
	f, err := readForm(r)
	rec.Filename, rec.Size, rec.SHA256 = f.name, f.size, f.sha256
	rec.Location, rec.AncestorID, rec.ParentID = f.fields["locationField"], f.fields["ancestorIdField"], f.fields["parentIdField"]
	if err != nil {
		refuse(http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	if msg := checkFields(f); msg != "" {
		refuse(http.StatusBadRequest, "bad_request", msg)
		return
	}
	if id := s.unknownID(rec.AncestorID, rec.ParentID); id != "" {
		refuse(http.StatusForbidden, "forbidden", fmt.Sprintf("no author access to item %q", id))
		return
	}
	s.store(w, &rec, f, user)
}

// checkFields returns why the form's fields are refused, or "".
func checkFields(f form) string {
	if !f.file {
		return "fileData is required: a file part with a filename"
	}
	name := f.fields["locationField"]
	loc, ok := locations[name]
	switch {
	case name == "":
		return "locationField is required"
	case !ok:
		return fmt.Sprintf("locationField %q must be activity, app, decision, instance, policy or post", name)
	case loc.ancestor && f.fields["ancestorIdField"] == "":
		return "ancestorIdField is required for locationField " + name
	case loc.parent && f.fields["parentIdField"] == "":
		return "parentIdField is required for locationField " + name
	}
	return ""
}

// unknownID returns the first given id outside Options.KnownIDs, when
// those are set.
func (s *Server) unknownID(ids ...string) string {
	if len(s.opts.KnownIDs) == 0 {
		return ""
	}
	for _, id := range ids {
		if id != "" && !slices.Contains(s.opts.KnownIDs, id) {
			return id
		}
	}
	return ""
}

// store answers a valid upload: SIZE or SPACE when it does not fit, an
// injected status, or SUCCESS with the file recorded.
func (s *Server) store(w http.ResponseWriter, rec *Request, f form, user string) {
	now := s.opts.Now()
	a := Attachment{
		Name: f.name, ContentType: f.ctype, Size: f.size, SHA256: f.sha256,
		Location: rec.Location, AncestorID: rec.AncestorID, ParentID: rec.ParentID,
		Type: fileType(f.name), UploadUser: user, UploadDate: now,
	}
	// Blueworks echoes only the ids the location uses.
	loc := locations[a.Location]
	if !loc.ancestor {
		a.AncestorID = ""
	}
	if !loc.parent {
		a.ParentID = ""
	}
	status := StatusSuccess
	s.mu.Lock()
	switch {
	case f.size > s.opts.MaxFileBytes:
		status = StatusSize
	case s.used+f.size > s.opts.QuotaBytes:
		status = StatusSpace
	default:
		if q := s.faults[uploadStatusKey]; len(q) > 0 {
			status, s.faults[uploadStatusKey] = q[0].uploadStatus, q[1:]
			rec.Fault = "upload status " + status
		}
	}
	if status == StatusSuccess {
		s.seq++
		a.ID, a.FileItemID = newID(), strconv.FormatInt(int64(0x1000+s.seq), 16)
		s.attachments = append(s.attachments, a)
		s.used += f.size
	}
	s.mu.Unlock()

	rec.Status, rec.UploadStatus = http.StatusOK, status
	s.record(*rec)
	answer := fileJSON(a)
	answer["status"], answer["version"] = status, APIVersion
	writeJSON(w, http.StatusOK, answer)
}

// readForm streams the multipart body: small fields are kept, fileData is
// hashed and counted, never buffered.
func readForm(r *http.Request) (form, error) {
	f := form{fields: map[string]string{}}
	mr, err := r.MultipartReader()
	if err != nil {
		return f, errBadForm
	}
	for parts := 0; ; parts++ {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return f, nil
		}
		if err != nil || parts >= 64 {
			return f, errBadForm
		}
		switch name := p.FormName(); {
		case name == "fileData" && p.FileName() != "":
			if f.file {
				return f, errors.New("only one fileData part is allowed")
			}
			h := sha256.New()
			n, err := io.Copy(h, p)
			if err != nil {
				return f, errBadForm
			}
			f.file, f.name, f.ctype, f.size, f.sha256 = true, p.FileName(), p.Header.Get("Content-Type"), n, hex.EncodeToString(h.Sum(nil))
		case name == "locationField" || name == "ancestorIdField" || name == "parentIdField":
			v, err := io.ReadAll(io.LimitReader(p, 4<<10+1))
			if err != nil || len(v) > 4<<10 {
				return f, errBadForm
			}
			f.fields[name] = strings.TrimSpace(string(v))
		default:
			if _, err := io.Copy(io.Discard, p); err != nil {
				return f, errBadForm
			}
		}
	}
}

// fileType is FileUpload's numeric type of a file, from its extension.
func fileType(name string) string {
	switch strings.ToLower(path.Ext(name)) {
	case ".xls", ".xlsx", ".xlsm", ".csv":
		return "2"
	case ".png", ".jpg", ".jpeg", ".gif", ".bmp", ".svg", ".tif", ".tiff":
		return "3"
	case ".pdf":
		return "4"
	case ".ppt", ".pptx":
		return "5"
	case ".mpp":
		return "6"
	case ".vsd", ".vsdx":
		return "7"
	case ".doc", ".docx":
		return "8"
	case ".txt":
		return "9"
	}
	return "1"
}

// userID is a stable id for a username, in the style of "7f0002".
func userID(user string) string {
	sum := sha256.Sum256([]byte(user))
	return hex.EncodeToString(sum[:3])
}

// newID is an attachment id in the style of "5f501e134978a".
func newID() string {
	b := make([]byte, 7)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)[:13]
}
