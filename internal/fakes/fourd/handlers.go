package fourd

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxJSONBytes bounds the JSON body of a $method=update.
const maxJSONBytes = 1 << 20

// login opens a session for the configured user.
func (s *Server) login(w http.ResponseWriter, r *http.Request, rec *Request) {
	_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, maxJSONBytes))
	user, pass := r.Header.Get("username-4D"), r.Header.Get("password-4D")
	rec.Username = user
	s.mu.Lock()
	refusing := time.Now().Before(s.refuseUntil)
	s.mu.Unlock()
	if s.opts.Username != "" && (refusing || !equal(user, s.opts.Username) || !equal(pass, s.opts.Password)) {
		s.reply(w, rec, http.StatusOK, map[string]bool{"result": false})
		return
	}
	id := newID()
	s.mu.Lock()
	s.sessions[id] = true
	s.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: s.opts.CookieName, Value: id, Path: "/", HttpOnly: true})
	s.reply(w, rec, http.StatusOK, map[string]bool{"result": true})
}

func equal(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// read answers GET /rest/{Dataclass}({key}).
func (s *Server) read(w http.ResponseWriter, rec *Request, dc, key string) {
	s.mu.Lock()
	status, body := s.readLocked(dc, key)
	s.mu.Unlock()
	s.reply(w, rec, status, body)
}

func (s *Server) readLocked(dc, key string) (int, any) {
	class, ok := s.classes[dc]
	if !ok {
		return noDataclass(dc)
	}
	e, ok := s.entities[dc][key]
	if !ok {
		return noEntity(dc, key)
	}
	return http.StatusOK, s.entityJSON(dc, key, class, e)
}

// upload answers POST /rest/$upload: it hashes the body as it streams in
// and keeps an upload with a fresh ID until its timeout.
func (s *Server) upload(w http.ResponseWriter, r *http.Request, rec *Request) {
	q := r.URL.Query()
	binary, pict := q.Get("$binary") == "true", q.Get("$rawPict") == "true"
	if binary == pict {
		s.refuse(w, r, rec, http.StatusBadRequest, "$upload needs exactly one of $binary=true and $rawPict=true")
		return
	}
	timeout := s.opts.UploadTimeout
	if q.Has("$timeout") {
		secs, err := strconv.Atoi(q.Get("$timeout"))
		if err != nil || secs <= 0 {
			s.refuse(w, r, rec, http.StatusBadRequest, "$timeout must be a positive number of seconds, not "+strconv.Quote(q.Get("$timeout")))
			return
		}
		timeout = time.Duration(secs) * time.Second
	}
	ctype, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if pict && (err != nil || !strings.HasPrefix(ctype, "image/")) {
		s.refuse(w, r, rec, http.StatusBadRequest, "$rawPict=true needs an image/* Content-Type, not "+strconv.Quote(r.Header.Get("Content-Type")))
		return
	}
	switch {
	case r.ContentLength < 0:
		s.refuse(w, r, rec, http.StatusLengthRequired, "Content-Length is required")
		return
	case r.ContentLength > s.opts.MaxRequestBytes:
		// Not drained: a server refusing a too large request closes it.
		s.replyError(w, rec, http.StatusRequestEntityTooLarge, 0,
			fmt.Sprintf("request of %d bytes is over the maximum request size of %d bytes", r.ContentLength, s.opts.MaxRequestBytes))
		return
	}
	h := sha256.New()
	n, err := io.Copy(h, r.Body)
	rec.BodySize, rec.BodySHA256 = n, hex.EncodeToString(h.Sum(nil))
	if err != nil {
		s.replyError(w, rec, http.StatusBadRequest, 0, "body broke off after "+strconv.FormatInt(n, 10)+" bytes")
		return
	}
	u := &upload{
		id: newID(), name: filename(r.Header.Get("Content-Disposition")), contentType: ctype,
		sha256: rec.BodySHA256, size: n, picture: pict, expires: s.opts.Now().Add(timeout),
	}
	s.mu.Lock()
	s.uploads[u.id] = u
	s.mu.Unlock()
	s.reply(w, rec, http.StatusOK, map[string]string{"ID": u.id})
}

// refuse reads and discards the body, so the client reliably sees the
// answer, then answers status with a 4D error body.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, rec *Request, status int, msg string) {
	_, _ = io.Copy(io.Discard, r.Body)
	s.replyError(w, rec, status, 0, msg)
}

// filename reads the filename of a Content-Disposition, the RFC 5987
// filename* when there is one; "" when there is none.
func filename(cd string) string {
	if cd == "" {
		return ""
	}
	_, params, err := mime.ParseMediaType(cd)
	if err != nil {
		return ""
	}
	return params["filename"]
}

// update answers POST /rest/{Dataclass}?$method=update for one entity.
func (s *Server) update(w http.ResponseWriter, r *http.Request, rec *Request, dc string, fault *Fault) {
	if m := r.URL.Query().Get("$method"); m != "update" {
		s.refuse(w, r, rec, http.StatusBadRequest, "POST on a dataclass needs $method=update (the fake knows no other $method), not "+strconv.Quote(m))
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxJSONBytes+1))
	sum := sha256.Sum256(body)
	rec.BodySize, rec.BodySHA256, rec.JSON = int64(len(body)), hex.EncodeToString(sum[:]), string(body)
	switch {
	case err != nil:
		s.replyError(w, rec, http.StatusBadRequest, 0, "body broke off")
		return
	case len(body) > maxJSONBytes:
		s.replyError(w, rec, http.StatusRequestEntityTooLarge, 0, "the fake takes at most 1 MiB of JSON")
		return
	}
	s.mu.Lock()
	status, reply := s.updateLocked(dc, body, fault)
	s.mu.Unlock()
	s.reply(w, rec, status, reply)
}

// updateLocked checks and applies an update the way 4D does: it loads the
// entity, assigns the attributes (an unknown attribute or upload ID fails
// here), then saves, which checks __STAMP.
func (s *Server) updateLocked(dc string, body []byte, fault *Fault) (int, any) {
	class, ok := s.classes[dc]
	if !ok {
		return noDataclass(dc)
	}
	if b := bytes.TrimSpace(body); len(b) > 0 && b[0] == '[' {
		return badRequest("the fake updates one entity per request: send an object, not an array")
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil || obj == nil {
		return badRequest("the body must be a JSON object: " + errText(err))
	}
	keyRaw, hasKey := obj["__KEY"]
	stampRaw, hasStamp := obj["__STAMP"]
	if !hasKey {
		if !hasStamp {
			return badRequest("no __KEY: 4D would create an entity, which the fake does not do")
		}
		return badRequest("__STAMP without __KEY")
	}
	key, ok := scalar(keyRaw)
	if !ok {
		return badRequest("__KEY must be a string or a number")
	}
	e, ok := s.entities[dc][key]
	if !ok {
		return noEntity(dc, key)
	}
	if fault != nil && fault.Mode == ModeStale {
		e.stamp++ // another user saved the entity meanwhile
	}
	if fault != nil && fault.Mode == ModeExpireUpload {
		s.expireReferenced(obj)
	}

	files, texts := map[string]*upload{}, map[string]*string{}
	for name, raw := range obj {
		switch name {
		case "__KEY", "__STAMP":
			continue
		case "ID":
			if v, ok := scalar(raw); ok && v == key {
				continue
			}
			return http.StatusInternalServerError, errorBody(0, "the primary key ID cannot be modified")
		}
		kind, ok := class.Attributes[name]
		if !ok {
			return http.StatusInternalServerError, errorBody(1500,
				fmt.Sprintf("The %q attribute cannot be found in the %q dataclass", name, dc))
		}
		if kind == Text {
			var v *string
			if err := json.Unmarshal(raw, &v); err != nil {
				return badRequest(fmt.Sprintf("attribute %q is text: send a string or null", name))
			}
			texts[name] = v
			continue
		}
		// {"ID": "..."}, with "ID" spelled exactly so, or null.
		var ref map[string]json.RawMessage
		var id string
		if err := json.Unmarshal(raw, &ref); err != nil || ref != nil && json.Unmarshal(ref["ID"], &id) != nil {
			return badRequest(fmt.Sprintf(`attribute %q takes an upload as {"ID":"<id from $upload>"}, or null`, name))
		}
		if ref == nil {
			files[name] = nil
			continue
		}
		u, ok := s.uploads[id]
		if !ok || !s.opts.Now().Before(u.expires) {
			return http.StatusInternalServerError, errorBody(1802,
				fmt.Sprintf("Upload %q cannot be found: unknown, or its $timeout has passed", id))
		}
		files[name] = u
	}

	stamp, ok := scalar(stampRaw)
	if !hasStamp || !ok || stamp != strconv.FormatInt(e.stamp, 10) {
		return http.StatusInternalServerError, s.staleStamp(dc, key, class, e)
	}
	for name, u := range files {
		if u == nil {
			delete(e.files, name)
			delete(e.history, name)
			continue
		}
		e.files[name] = u
		e.history[name] = append(e.history[name], u.sha256)
		s.binds++
	}
	for name, v := range texts {
		if v == nil {
			delete(e.texts, name)
			continue
		}
		e.texts[name] = *v
	}
	e.stamp++
	return http.StatusOK, s.entityJSON(dc, key, class, e)
}

// expireReferenced expires the upload IDs the update body names.
func (s *Server) expireReferenced(obj map[string]json.RawMessage) {
	past := s.opts.Now().Add(-1)
	for _, raw := range obj {
		var ref struct {
			ID string `json:"ID"`
		}
		if json.Unmarshal(raw, &ref) == nil {
			if u, ok := s.uploads[ref.ID]; ok {
				u.expires = past
			}
		}
	}
}

// staleStamp is 4D's documented answer to a __STAMP that does not match:
// the entity as it is, __STATUS and three errors.
func (s *Server) staleStamp(dc, key string, class Dataclass, e *entity) map[string]any {
	body := s.entityJSON(dc, key, class, e)
	body["__STATUS"] = map[string]any{"status": 2, "statusText": "Stamp has changed", "success": false}
	body["__ERROR"] = []fourDError{
		{Message: fmt.Sprintf("Given stamp does not match current one for record# %s of table %s", key, dc), ComponentSignature: "dbmg", ErrCode: 1263},
		{Message: fmt.Sprintf("Cannot save record %s in table %s of database ferry", key, dc), ComponentSignature: "dbmg", ErrCode: 1046},
		{Message: fmt.Sprintf("The entity# %s in the %q dataclass cannot be saved", key, dc), ComponentSignature: "dbmg", ErrCode: 1517},
	}
	return body
}

// entityJSON is an entity as 4D's REST server shows it: BLOB and picture
// attributes are deferred.
func (s *Server) entityJSON(dc, key string, class Dataclass, e *entity) map[string]any {
	uri := "/rest/" + dc + "(" + key + ")"
	out := map[string]any{"__entityModel": dc, "__KEY": key, "__STAMP": e.stamp, "uri": uri}
	if n, err := strconv.ParseInt(key, 10, 64); err == nil {
		out["ID"] = n
	} else {
		out["ID"] = key
	}
	for name, kind := range class.Attributes {
		switch {
		case kind == Text:
			out[name] = e.texts[name]
		case e.files[name] == nil:
			out[name] = nil
		case kind == Picture:
			out[name] = map[string]any{"__deferred": map[string]any{
				"uri":   fmt.Sprintf("%s/%s?$imageformat=best&$version=%d&$expand=%s", uri, name, e.stamp, name),
				"image": true,
			}}
		default:
			out[name] = map[string]any{"__deferred": map[string]any{
				"uri": fmt.Sprintf("%s/%s?$binary=true&$expand=%s", uri, name, name),
			}}
		}
	}
	return out
}

// scalar reads a JSON string or number as a string.
func scalar(raw json.RawMessage) (string, bool) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if dec.Decode(&v) != nil {
		return "", false
	}
	switch v := v.(type) {
	case string:
		return v, true
	case json.Number:
		return v.String(), true
	}
	return "", false
}

func errorBody(code int, msg string) map[string]any {
	return map[string]any{"__ERROR": []fourDError{{Message: msg, ComponentSignature: "dbmg", ErrCode: code}}}
}

func badRequest(msg string) (int, any) { return http.StatusBadRequest, errorBody(0, msg) }

// ErrCodeNoDataclass is the errCode 4D gives a dataclass that does not
// exist or is not exposed to REST.
const ErrCodeNoDataclass = 1800

// noDataclass is 4D's answer to a dataclass it does not expose: 404 ("The
// dataclass is not exposed to REST or the entity does not exist", status
// table of developer.4d.com/docs/REST/REST_requests) with a dbmg error of
// code 1800, "datastore class cannot be found", as 4D answers it (reported
// in github.com/Wakanda/wakanda-issues/issues/275).
func noDataclass(dc string) (int, any) {
	return http.StatusNotFound, errorBody(ErrCodeNoDataclass, fmt.Sprintf("The datastore class %q cannot be found", dc))
}

// noEntity is 4D's answer to a key that names no entity: 404 (same status
// table) with the documented errCode 1542.
func noEntity(dc, key string) (int, any) {
	return http.StatusNotFound, errorBody(1542, fmt.Sprintf("Cannot find entity with %q key in the %q dataclass", key, dc))
}

func errText(err error) string {
	if err == nil {
		return "null"
	}
	return err.Error()
}
