package fourd

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
)

// The update of one entity: POST /rest/{Dataclass}?$method=update
// (developer.4d.com, REST page $method), taken in 4D's steps: parse the
// body, load the entity, assign the attributes, then save, which checks
// __STAMP.

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

// refusal is the answer to an update refused at one of its steps: a
// status and 4D's error body.
type refusal struct {
	status int
	body   any
}

// refused makes a refusal of an answer such as badRequest's.
func refused(status int, body any) *refusal { return &refusal{status: status, body: body} }

// updateBody is the body of a $method=update, parsed.
type updateBody struct {
	// obj is the body's object, by attribute name.
	obj map[string]json.RawMessage
	// key is the __KEY, as a string.
	key string
	// stamp is the raw __STAMP, nil when hasStamp is false.
	stamp    json.RawMessage
	hasStamp bool
}

// assignments are the attribute values an update assigns: a nil value
// empties the attribute.
type assignments struct {
	files map[string]*upload
	texts map[string]*string
}

// updateLocked checks and applies an update the way 4D does: it loads the
// entity, assigns the attributes (an unknown attribute or upload ID fails
// here), then saves, which checks __STAMP.
func (s *Server) updateLocked(dc string, body []byte, fault *Fault) (int, any) {
	class, ok := s.classes[dc]
	if !ok {
		return noDataclass(dc)
	}
	in, bad := parseUpdate(body)
	if bad != nil {
		return bad.status, bad.body
	}
	e, ok := s.entities[dc][in.key]
	if !ok {
		return noEntity(dc, in.key)
	}
	s.updateFaultLocked(e, in.obj, fault)
	a, bad := s.assignLocked(dc, class, in)
	if bad != nil {
		return bad.status, bad.body
	}
	stamp, ok := scalar(in.stamp)
	if !in.hasStamp || !ok || stamp != strconv.FormatInt(e.stamp, 10) {
		return http.StatusInternalServerError, s.staleStamp(dc, in.key, class, e)
	}
	s.saveLocked(e, a)
	return http.StatusOK, s.entityJSON(dc, in.key, class, e)
}

// parseUpdate reads the body of an update: one JSON object with a __KEY.
func parseUpdate(body []byte) (updateBody, *refusal) {
	if b := bytes.TrimSpace(body); len(b) > 0 && b[0] == '[' {
		return updateBody{}, refused(badRequest("the fake updates one entity per request: send an object, not an array"))
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil || obj == nil {
		return updateBody{}, refused(badRequest("the body must be a JSON object: " + errText(err)))
	}
	keyRaw, hasKey := obj["__KEY"]
	stampRaw, hasStamp := obj["__STAMP"]
	if !hasKey {
		if !hasStamp {
			return updateBody{}, refused(badRequest("no __KEY: 4D would create an entity, which the fake does not do"))
		}
		return updateBody{}, refused(badRequest("__STAMP without __KEY"))
	}
	key, ok := scalar(keyRaw)
	if !ok {
		return updateBody{}, refused(badRequest("__KEY must be a string or a number"))
	}
	return updateBody{obj: obj, key: key, stamp: stampRaw, hasStamp: hasStamp}, nil
}

// updateFaultLocked applies the part of an update's fault that changes the
// fake's state before the update is checked.
func (s *Server) updateFaultLocked(e *entity, obj map[string]json.RawMessage, fault *Fault) {
	if fault != nil && fault.Mode == ModeStale {
		e.stamp++ // another user saved the entity meanwhile
	}
	if fault != nil && fault.Mode == ModeExpireUpload {
		s.expireReferenced(obj)
	}
}

// assignLocked checks the attributes an update assigns, as 4D does when
// it assigns them to the loaded entity: an unknown attribute, a value of
// the wrong shape or an unknown or expired upload ID is refused.
func (s *Server) assignLocked(dc string, class Dataclass, in updateBody) (assignments, *refusal) {
	a := assignments{files: map[string]*upload{}, texts: map[string]*string{}}
	for name, raw := range in.obj {
		switch name {
		case "__KEY", "__STAMP":
			continue
		case "ID":
			if v, ok := scalar(raw); ok && v == in.key {
				continue
			}
			return a, refused(http.StatusInternalServerError, errorBody(0, "the primary key ID cannot be modified"))
		}
		kind, ok := class.Attributes[name]
		if !ok {
			return a, refused(http.StatusInternalServerError, errorBody(1500,
				fmt.Sprintf("The %q attribute cannot be found in the %q dataclass", name, dc)))
		}
		if kind == Text {
			var v *string
			if err := json.Unmarshal(raw, &v); err != nil {
				return a, refused(badRequest(fmt.Sprintf("attribute %q is text: send a string or null", name)))
			}
			a.texts[name] = v
			continue
		}
		u, bad := s.uploadRefLocked(name, raw)
		if bad != nil {
			return a, bad
		}
		a.files[name] = u
	}
	return a, nil
}

// uploadRefLocked reads the value of a BLOB or picture attribute: the
// upload it names, or nil for null.
func (s *Server) uploadRefLocked(name string, raw json.RawMessage) (*upload, *refusal) {
	// {"ID": "..."}, with "ID" spelled exactly so, or null.
	var ref map[string]json.RawMessage
	var id string
	if err := json.Unmarshal(raw, &ref); err != nil || ref != nil && json.Unmarshal(ref["ID"], &id) != nil {
		return nil, refused(badRequest(fmt.Sprintf(`attribute %q takes an upload as {"ID":"<id from $upload>"}, or null`, name)))
	}
	if ref == nil {
		return nil, nil
	}
	u, ok := s.uploads[id]
	if !ok || !s.opts.Now().Before(u.expires) {
		return nil, refused(http.StatusInternalServerError, errorBody(1802,
			fmt.Sprintf("Upload %q cannot be found: unknown, or its $timeout has passed", id)))
	}
	return u, nil
}

// saveLocked saves the checked assignments in e and bumps its __STAMP.
func (s *Server) saveLocked(e *entity, a assignments) {
	for name, u := range a.files {
		if u == nil {
			delete(e.files, name)
			delete(e.history, name)
			continue
		}
		e.files[name] = u
		e.history[name] = append(e.history[name], u.sha256)
		s.binds++
	}
	for name, v := range a.texts {
		if v == nil {
			delete(e.texts, name)
			continue
		}
		e.texts[name] = *v
	}
	e.stamp++
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

func badRequest(msg string) (int, any) { return http.StatusBadRequest, errorBody(0, msg) }

func errText(err error) string {
	if err == nil {
		return "null"
	}
	return err.Error()
}
