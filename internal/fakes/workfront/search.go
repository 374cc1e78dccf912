package workfront

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// searchFields are the document fields search filters on.
var searchFields = []string{"ID", "name", "docObjCode", "objID", "extRefID"}

// serveSearch lists the documents whose fields equal the filters given.
func (s *Server) serveSearch(w http.ResponseWriter, r *http.Request, rec *Request) {
	filters, ok := searchFilters(w, r, rec, searchFields, "Document")
	if !ok {
		return
	}
	s.mu.Lock()
	found := []map[string]string{}
	for _, d := range s.docs {
		j := docJSON(d)
		if matches(j, filters) {
			found = append(found, j)
		}
	}
	s.mu.Unlock()
	writeData(w, found)
}

// searchFilters reads a search's field=value filters among fields of
// model, or answers the refusal and returns false.
func searchFilters(w http.ResponseWriter, r *http.Request, rec *Request, fields []string, model string) (map[string]string, bool) {
	if err := r.ParseForm(); err != nil {
		writeError(w, r, rec, http.StatusBadRequest, ClassInvalidParameter, "unreadable parameters")
		return nil, false
	}
	filters := map[string]string{}
	for k, v := range r.Form {
		switch {
		case k == "fields" || k == "method" || k == "apiKey" || k == "sessionID" || strings.HasPrefix(k, "$$"):
		case strings.HasSuffix(k, "_Mod"):
			if v[0] != "eq" {
				writeError(w, r, rec, http.StatusUnprocessableEntity, ClassInvalidParameter,
					fmt.Sprintf("the fake supports only the eq modifier, not %s=%s", k, v[0]))
				return nil, false
			}
		case slices.Contains(fields, k):
			filters[k] = v[0]
		default:
			writeError(w, r, rec, http.StatusUnprocessableEntity, ClassIllegalArgument,
				fmt.Sprintf("APIModel V15_0 does not support field %s (%s)", k, model))
			return nil, false
		}
	}
	return filters, true
}

func matches(doc, filters map[string]string) bool {
	for k, v := range filters {
		if doc[k] != v {
			return false
		}
	}
	return true
}
