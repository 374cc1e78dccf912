package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/ferry-relay/ferry/internal/apikeys"
	"github.com/ferry-relay/ferry/internal/audit"
	"github.com/ferry-relay/ferry/jobs"
)

// handlerFunc is a handler of an authenticated request.
type handlerFunc func(http.ResponseWriter, *http.Request, apikeys.Key)

// Authenticate checks the bearer key of r and returns who it speaks for.
// It is the API's one front door: the middleware calls it, and so may any
// other handler that must tell who is asking (a dashboard's login). It
// returns apikeys.ErrInvalid for a missing, unknown, revoked or expired key,
// and refuses any key but one known good, unchecked, from a client address
// that sent too many invalid ones (authlimit.go).
func (s *Server) Authenticate(r *http.Request) (apikeys.Key, error) {
	token, ok := bearer(r.Header.Get("Authorization"))
	if !ok {
		return apikeys.Key{}, fmt.Errorf("missing API key: %w", apikeys.ErrInvalid)
	}
	return s.checkKey(r, token)
}

// auth requires a valid API key whose role grants perm.
func (s *Server) auth(perm apikeys.Permission, h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := bearer(r.Header.Get("Authorization")); !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="ferry"`)
			writeError(w, http.StatusUnauthorized, "unauthorized", "missing API key: send Authorization: Bearer <key>")
			return
		}
		key, err := s.Authenticate(r)
		var limited *authLimitedError
		if errors.As(err, &limited) {
			refuseLimited(w, limited)
			return
		}
		if errors.Is(err, apikeys.ErrInvalid) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="ferry", error="invalid_token"`)
			writeError(w, http.StatusUnauthorized, "unauthorized", "invalid API key (unknown, revoked or expired)")
			return
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if !key.Can(perm) {
			writeError(w, http.StatusForbidden, "forbidden",
				fmt.Sprintf("an %s key may not %s", key.Role, perm))
			return
		}
		if !s.allow(w, key) {
			return
		}
		if err := checkRequestText(r); err != nil {
			s.fail(w, r, err)
			return
		}
		h(w, r, key)
	})
}

// scope is the tenants the request may see: the key's own, or for an
// administrator every tenant, or the one named by ?tenant=.
func (s *Server) scope(r *http.Request, key apikeys.Key) (jobs.Scope, error) {
	t := r.URL.Query().Get("tenant")
	if key.Can(apikeys.PermAdmin) {
		if t == "" {
			return jobs.AllTenants(), nil
		}
		return jobs.InTenant(t), nil
	}
	if t != "" && t != key.Tenant {
		return jobs.Scope{}, otherTenant(key)
	}
	return jobs.InTenant(key.Tenant), nil
}

// tenantOf is the one tenant a request about a batch names: the key's
// own, or for an administrator the one in ?tenant= if given.
func (s *Server) tenantOf(r *http.Request, key apikeys.Key) (string, error) {
	t := r.URL.Query().Get("tenant")
	switch {
	case t == "" || t == key.Tenant:
		return key.Tenant, nil
	case key.Can(apikeys.PermAdmin):
		return t, nil
	}
	return "", otherTenant(key)
}

func otherTenant(key apikeys.Key) error {
	return &apiError{http.StatusForbidden, "forbidden",
		fmt.Sprintf("this key sees only tenant %s", strconv.Quote(key.Tenant))}
}

// audited records a state change made by key. The change is made: a
// failure to record it is logged loudly, not answered to the client.
func (s *Server) audited(ctx context.Context, key apikeys.Key, action, subject string, detail map[string]any) {
	if s.audit == nil {
		return
	}
	e := audit.Entry{KeyID: key.ID, KeyName: key.Name, Tenant: key.Tenant, Action: action, Subject: subject, Detail: detail}
	if err := s.audit.Record(context.WithoutCancel(ctx), e); err != nil {
		s.log.Error("audit trail: change made but not recorded", "action", action, "subject", subject, "key", key.Name, "err", err)
	}
}
