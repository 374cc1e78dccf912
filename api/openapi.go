package api

import (
	_ "embed"
	"net/http"
)

// OpenAPI is the OpenAPI 3.1 document of the API, served at GET
// /v1/openapi.json. It is written by hand, next to the handlers it
// describes; tests check that it names every /v1 route the server
// registers, that its schemas have the fields of the wire types in
// apitypes, and (in e2e) that real answers validate against it.
//
//go:embed openapi.json
var OpenAPI []byte

// openapi serves the document. It needs no API key: it is the contract,
// not data.
func (s *Server) openapi(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(OpenAPI)
}
