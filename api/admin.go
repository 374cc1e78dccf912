package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/ferry-relay/ferry/apitypes"
	"github.com/ferry-relay/ferry/internal/apikeys"
	"github.com/ferry-relay/ferry/internal/audit"
)

// adminRoutes registers who-am-I, the audit trail and key management:
//
//	GET  /v1/whoami                    the key's name, tenant and role (any key)
//	GET  /v1/audit                     state changes, newest first (?tenant=, ?action=, ?cursor=, ?limit=)
//	GET  /v1/apikeys                   every key (never the key itself)
//	POST /v1/apikeys                   create a key: {"name","tenant","role","expires_in":"720h"}
//	POST /v1/apikeys/{ref}/revoke      revoke the key named ref, or with prefix ref
func (s *Server) adminRoutes(mux *http.ServeMux) {
	mux.Handle("GET /v1/whoami", s.auth(apikeys.PermRead, s.whoami))
	mux.Handle("GET /v1/audit", s.auth(apikeys.PermAdmin, s.listAudit))
	mux.Handle("GET /v1/apikeys", s.auth(apikeys.PermAdmin, s.listKeys))
	mux.Handle("POST /v1/apikeys", s.auth(apikeys.PermAdmin, s.createKey))
	mux.Handle("POST /v1/apikeys/{ref}/revoke", s.auth(apikeys.PermAdmin, s.revokeKey))
}

func (s *Server) whoami(w http.ResponseWriter, _ *http.Request, key apikeys.Key) {
	writeJSON(w, http.StatusOK, wireIdentity(key))
}

func wireIdentity(k apikeys.Identity) apitypes.Identity {
	return apitypes.Identity{ID: k.ID, Name: k.Name, Tenant: k.Tenant, Role: string(k.Role), ExpiresAt: k.ExpiresAt}
}

func wireKey(i apikeys.Info) apitypes.APIKey {
	return apitypes.APIKey{Identity: wireIdentity(i.Identity), Prefix: i.Prefix, CreatedAt: i.CreatedAt,
		LastUsedAt: i.LastUsedAt, RevokedAt: i.RevokedAt}
}

func wireAudit(e audit.Entry) apitypes.AuditEntry {
	return apitypes.AuditEntry{ID: e.ID, At: e.At, KeyID: e.KeyID, KeyName: e.KeyName, Tenant: e.Tenant,
		Action: e.Action, Subject: e.Subject, Detail: e.Detail}
}

func (s *Server) listAudit(w http.ResponseWriter, r *http.Request, _ apikeys.Key) {
	if s.audit == nil {
		writeError(w, http.StatusNotImplemented, "not_configured", "this server keeps no audit trail")
		return
	}
	q := r.URL.Query()
	p, err := parsePage(q, maxAuditPage)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	before, err := p.sequence()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	f := audit.Filter{Tenant: q.Get("tenant"), Action: q.Get("action"), Before: before, Limit: p.limit}
	entries, next, err := s.audit.List(r.Context(), f)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	page := apitypes.AuditPage{Entries: make([]apitypes.AuditEntry, len(entries))}
	for i, e := range entries {
		page.Entries[i] = wireAudit(e)
	}
	if next > 0 {
		page.NextCursor = strconv.FormatInt(next, 10)
	}
	writeJSON(w, http.StatusOK, page)
}

func (s *Server) keyAdmin(w http.ResponseWriter) bool {
	if s.admin == nil {
		writeError(w, http.StatusNotImplemented, "not_configured", "this server does not manage API keys")
		return false
	}
	return true
}

func (s *Server) listKeys(w http.ResponseWriter, r *http.Request, _ apikeys.Key) {
	if !s.keyAdmin(w) {
		return
	}
	list, err := s.admin.List(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := apitypes.APIKeyList{Keys: make([]apitypes.APIKey, len(list))}
	for i, k := range list {
		out.Keys[i] = wireKey(k)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) createKey(w http.ResponseWriter, r *http.Request, key apikeys.Key) {
	if !s.keyAdmin(w) {
		return
	}
	var req apitypes.NewAPIKey
	if err := decodeJSON(r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	sp := apikeys.Spec{Name: req.Name, Tenant: req.Tenant, Role: apikeys.Role(req.Role)}
	if req.ExpiresIn != "" {
		d, err := time.ParseDuration(req.ExpiresIn)
		if err != nil || d <= 0 {
			writeError(w, http.StatusBadRequest, "bad_request", "expires_in must be a positive duration such as 720h")
			return
		}
		sp.TTL = d
	}
	secret, info, err := s.admin.CreateKey(r.Context(), sp)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.audited(r.Context(), key, audit.ActionKeyCreate, info.Name,
		map[string]any{"prefix": info.Prefix, "tenant": info.Tenant, "role": info.Role, "expires_at": info.ExpiresAt})
	writeJSON(w, http.StatusCreated, apitypes.CreatedAPIKey{Key: secret, Info: wireKey(info)})
}

func (s *Server) revokeKey(w http.ResponseWriter, r *http.Request, key apikeys.Key) {
	if !s.keyAdmin(w) {
		return
	}
	info, err := s.admin.Revoke(r.Context(), r.PathValue("ref"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.audited(r.Context(), key, audit.ActionKeyRevoke, info.Name,
		map[string]any{"prefix": info.Prefix, "tenant": info.Tenant, "role": info.Role})
	writeJSON(w, http.StatusOK, wireKey(info))
}
