package api

import (
	"mime"
	"mime/multipart"
	"path"
	"strings"
	"unicode/utf8"

	"github.com/ferry-relay/ferry/jobs"
)

// The rules of the names an upload gives its files: kept as the client
// wrote them, refused only when no target could take them.

// partFilename is the filename of a multipart part exactly as the client
// sent it (RFC 7578 §4.2, with RFC 2231 filename* decoded).
// multipart.Part.FileName would cut it to its last path element; ferry
// keeps it whole, since it never uses it as a path.
func partFilename(p *multipart.Part) string {
	_, params, err := mime.ParseMediaType(p.Header.Get("Content-Disposition"))
	if err != nil {
		return ""
	}
	return params["filename"]
}

// cleanFilename keeps the name as the user gave it but refuses what no
// target could take. The name is never used as a path by ferry.
func cleanFilename(name string) (string, error) {
	switch {
	case name == "":
		return "", badRequest("missing filename")
	case !utf8.ValidString(name):
		return "", badRequest("filename is not valid UTF-8")
	case len(name) > 1024:
		return "", badRequest("filename is longer than 1024 bytes")
	case strings.ContainsAny(name, "\x00\r\n"):
		return "", badRequest("filename contains a control character")
	}
	return name, nil
}

// cleanClientPath keeps the client's path of a file as given, refusing what
// cannot be shown in a report line. Like a filename, it is never used as a
// path by ferry.
func cleanClientPath(p string) (string, error) {
	switch {
	case !utf8.ValidString(p):
		return "", badRequest("path is not valid UTF-8")
	case len(p) > 4096:
		return "", badRequest("path is longer than 4096 bytes")
	case strings.ContainsAny(p, "\x00\r\n"):
		return "", badRequest("path contains a control character")
	}
	return p, nil
}

// checkIdempotencyKey refuses a key no store could keep, or one that holds
// what ferry derives the keys of a request's files with.
func checkIdempotencyKey(key string) error {
	if len(key) > 200 {
		return badRequest("Idempotency-Key is longer than 200 bytes")
	}
	if err := checkText("Idempotency-Key", key); err != nil {
		return err
	}
	return jobs.CheckIdempotencyKey(key)
}

// contentType is the declared type, or the one the extension implies.
func contentType(declared, filename string) string {
	if mt, _, err := mime.ParseMediaType(declared); err == nil && mt != "application/octet-stream" {
		return declared
	}
	if t := mime.TypeByExtension(strings.ToLower(path.Ext(filename))); t != "" {
		return t
	}
	return "application/octet-stream"
}
