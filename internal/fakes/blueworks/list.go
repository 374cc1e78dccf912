package blueworks

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// StepList is ListFiles, as Fail and FailNext name it. It is not one of
// Steps: the connector calls it only to find out whether a FileUpload
// whose answer was lost landed.
const StepList = "ListFiles"

// cst is the zone of ListFiles' short-form dates: "The short form dates are
// assumed to be midnight Central Standard Time".
var cst = time.FixedZone("CST", -6*60*60)

// serveList is GET /scr/api/ListFiles, after the Blueworks Live REST API
// reference page "ListFiles" (ibm.com/docs/en/SS2MKC, topics/list_files,
// linked from "Attachments"): "Retrieves a list of all or a range of files
// for the account". What the page says, the fake does:
//   - "The user must be an administrator to access the ListFiles API": the
//     acting user (X-On-Behalf-Of, or the User Service ID's own user) must
//     be one of Options.Admins, or the answer is 401 with the message
//     FileUpload documents for 401, "The user isn't authorized to make the
//     request".
//   - X-On-Behalf-Of: required with Service ID credentials, and must name a
//     user of the account, as for FileUpload.
//   - from (query): "Lists all files uploaded after this date", in ISO
//     8601 long form (2012-08-13T15:44:31.571-05:00) or short form
//     (2012-08-13, midnight Central Standard Time). Anything else is 400.
//
// The page as stored for this project does not show the response body. The
// fake answers {"files":[...]}, each entry with the fields FileUpload's
// documented answer gives a file (id, fileItemId, name, size, parentId,
// ancestorId, location, uploadDate in epoch milliseconds, uploadUserName,
// type, isPublic), all strings as there. The connector reads either that
// object or a bare array.
func (s *Server) serveList(w http.ResponseWriter, r *http.Request) {
	rec := Request{
		Step: StepList, Method: r.Method, Path: r.URL.RequestURI(),
		Bearer:     strings.HasPrefix(strings.ToLower(r.Header.Get("Authorization")), "bearer "),
		OnBehalfOf: r.Header.Get("X-On-Behalf-Of"),
	}
	refuse := func(code int, errCode, msg string) {
		rec.Status, rec.Error = code, msg
		s.record(rec)
		if errCode == "invalid_token" {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			writeOAuthError(w, code, errCode, msg)
			return
		}
		writeError(w, code, errCode, msg)
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		refuse(http.StatusMethodNotAllowed, "method_not_allowed", "The specified method is not allowed. Select GET method.")
		return
	}
	if s.injectFault(w, r, StepList) {
		return
	}
	if why := s.authorize(r); why != "" {
		refuse(http.StatusUnauthorized, "invalid_token", why)
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
	if !slices.Contains(s.opts.Admins, user) {
		refuse(http.StatusUnauthorized, "not_authorized", "The user isn't authorized to make the request: ListFiles needs an administrator")
		return
	}
	var from time.Time
	if v := r.URL.Query().Get("from"); v != "" {
		t, ok := parseDate(v)
		if !ok {
			refuse(http.StatusBadRequest, "bad_request", "from must be an ISO 8601 date such as 2012-08-13T15:44:31.571-05:00 or 2012-08-13")
			return
		}
		from = t
	}
	files := []map[string]string{}
	for _, a := range s.Attachments() {
		if a.UploadDate.After(from) {
			files = append(files, fileJSON(a))
		}
	}
	rec.Status = http.StatusOK
	s.record(rec)
	writeJSON(w, http.StatusOK, map[string]any{"files": files})
}

// parseDate reads ListFiles' date forms.
func parseDate(v string) (time.Time, bool) {
	for _, layout := range []string{"2006-01-02T15:04:05.999999999Z07:00", "2006-01-02T15:04:05Z07:00"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, true
		}
	}
	t, err := time.ParseInLocation("2006-01-02", v, cst)
	return t, err == nil
}

// fileJSON is a stored file as Blueworks shows one: FileUpload's fields,
// all strings.
func fileJSON(a Attachment) map[string]string {
	return map[string]string{
		"id":             a.ID,
		"fileItemId":     a.FileItemID,
		"name":           a.Name,
		"size":           strconv.FormatFloat(float64(a.Size), 'f', 1, 64),
		"parentId":       a.ParentID,
		"ancestorId":     a.AncestorID,
		"location":       a.Location,
		"uploadDate":     strconv.FormatInt(a.UploadDate.UnixMilli(), 10),
		"uploadUserId":   userID(a.UploadUser),
		"uploadUserName": a.UploadUser,
		"type":           a.Type,
		"isPublic":       "false",
	}
}
