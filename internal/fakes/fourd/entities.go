package fourd

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/ferry-relay/ferry/internal/fakes/contract"
)

// Entities: what the fake holds of each entity, how 4D's REST server shows
// one (GET /rest/{Dataclass}({key}), developer.4d.com "{dataClass}({key})"),
// and 4D's answers to a dataclass or key that names nothing.

// entity is one entity: its stamp and attribute values.
type entity struct {
	stamp int64
	files map[string]*upload // BLOB and picture attributes
	texts map[string]string
	// history is, per BLOB or picture attribute, the SHA-256 of every
	// file an update put there, oldest first: the versions of the
	// document the attribute holds (versions.go).
	history map[string][]string
}

// Entity is the state of one entity.
type Entity struct {
	// Stamp is its __STAMP.
	Stamp int64
	// Texts are its text attributes that have a value.
	Texts map[string]string
	// Files are the documents in its BLOB and picture attributes.
	Files map[string]contract.Document
}

// Entity returns the state of the entity of dataclass with key.
func (s *Server) Entity(dataclass, key string) (Entity, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.entities[dataclass][key]
	if !ok {
		return Entity{}, false
	}
	out := Entity{Stamp: e.stamp, Texts: map[string]string{}, Files: map[string]contract.Document{}}
	for k, v := range e.texts {
		out.Texts[k] = v
	}
	for attr, u := range e.files {
		out.Files[attr] = contract.Document{RemoteID: RemoteID(dataclass, key, attr), Name: u.name, SHA256: u.sha256, Size: u.size}
	}
	return out, true
}

// Touch saves the entity as another 4D user would, bumping its __STAMP, so
// that a __STAMP read earlier is stale. It reports whether the entity
// exists.
func (s *Server) Touch(dataclass, key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.entities[dataclass][key]
	if ok {
		e.stamp++
	}
	return ok
}

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
