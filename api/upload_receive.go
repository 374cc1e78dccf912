package api

import (
	"cmp"
	"io"
	"mime/multipart"
	"net/http"
	"strconv"

	"github.com/ferry-relay/ferry/internal/apikeys"
)

// Step 2 of an upload, as the body comes: a multipart body's fields, then
// its files one by one; or a raw body, one file (upload.go).

// receiveMultipart reads the fields, resolves the request at the first
// file part, then streams each file part into storage as it arrives.
func (s *Server) receiveMultipart(r *http.Request, body io.Reader, boundary string, key apikeys.Key, idem string, rec *receiver) (*uploadRequest, error) {
	if boundary == "" {
		return nil, badRequest("malformed multipart body: no boundary in Content-Type")
	}
	closing := newClosingWatcher(body, boundary)
	mr := multipart.NewReader(closing, boundary)
	fields := fieldReader{form: uploadForm{key: key, params: map[string]string{}}}
	var req *uploadRequest
	files := 0
	for {
		part, err := mr.NextPart()
		// Only a bare io.EOF is the closing boundary: a body that ends
		// without it yields an error that wraps io.EOF.
		if err == io.EOF { //nolint:errorlint // see above
			// And a body cut right after a delimiter line yields a bare
			// io.EOF too (reading the next part's headers): the body is
			// read to its end, which must be the closing delimiter.
			if err := readEpilogue(closing); err != nil {
				return nil, err
			}
			break
		}
		if err != nil {
			return nil, badRequest("malformed multipart body: %v", err)
		}
		if partFilename(part) == "" && part.FormName() != "file" {
			if req != nil {
				return nil, badRequest("field %q comes after a file: send target, batch, path and param.* fields before the first file", part.FormName())
			}
			if err := fields.read(part); err != nil {
				return nil, err
			}
			continue
		}
		if part.FormName() != "file" {
			return nil, badRequest("file part named %q: files go in parts named \"file\"", part.FormName())
		}
		if files++; files > maxFiles {
			return nil, badRequest("more than %d files in one request: send them in several", maxFiles)
		}
		if req == nil {
			req, err = s.resolve(r.Context(), key, idem, fields.form,
				"a file part came before the target field: send target (or batch), then param.* fields, then the files")
			if err != nil {
				return nil, err
			}
			if req.same != nil {
				return req, nil // answered before the body is read
			}
		} else if fields.form.path != "" {
			return nil, badRequest("field path names one file: send one file per request with it")
		} else if err := oneDocumentFile(fields.form); err != nil {
			return nil, err
		}
		if err := receivePart(req, part, rec); err != nil {
			return nil, err
		}
	}
	if req == nil {
		return nil, badRequest("no file: send the file in a multipart part named \"file\"")
	}
	return req, nil
}

// receivePart stores one file part of a multipart body.
func receivePart(req *uploadRequest, part *multipart.Part, rec *receiver) error {
	name, err := cleanFilename(partFilename(part))
	if err != nil {
		return err
	}
	declared := part.Header.Get("Content-Type")
	if err := checkText("the Content-Type of file "+strconv.Quote(name), declared); err != nil {
		return err
	}
	return rec.receive(req, part, -1, name, contentType(declared, name))
}

// fieldReader reads the plain fields of a multipart body into a form,
// within the limits on their number and size.
type fieldReader struct {
	form         uploadForm
	fields, size int
}

func (fr *fieldReader) read(part *multipart.Part) error {
	if fr.fields++; fr.fields > maxFields {
		return badRequest("more than %d form fields", maxFields)
	}
	v, err := io.ReadAll(io.LimitReader(part, maxFieldBytes+1))
	if err != nil {
		return badRequest("reading field %s: %v", part.FormName(), err)
	}
	if len(v) > maxFieldBytes {
		return badRequest("field %s is longer than %d bytes", part.FormName(), maxFieldBytes)
	}
	if fr.size += len(v); fr.size > maxFieldsBytes {
		return badRequest("form fields hold more than %d bytes together", maxFieldsBytes)
	}
	return fr.form.set(part.FormName(), string(v))
}

// receiveRaw resolves a raw body's request from its query string, checks
// its declared size, then stores it.
func (s *Server) receiveRaw(r *http.Request, body io.Reader, key apikeys.Key, idem string, rec *receiver) (*uploadRequest, error) {
	q := r.URL.Query()
	form := uploadForm{key: key, params: map[string]string{}}
	for name, vs := range q {
		if err := form.set(name, vs[len(vs)-1]); err != nil {
			return nil, err
		}
	}
	req, err := s.resolve(r.Context(), key, idem, form, "name it in ?target= (or name a batch object in ?batch=)")
	if err != nil || req.same != nil {
		return req, err
	}
	name, err := cleanFilename(q.Get("filename"))
	if err != nil {
		return nil, err
	}
	if err := s.checkDeclaredSize(req, name, r.ContentLength); err != nil {
		return nil, err
	}
	// The request's own Content-Type says how the body is sent, not what
	// the file is (curl --data-binary sends form-urlencoded): the file's
	// type is the content_type parameter's, or application/octet-stream
	// (then the extension's, as for any file declared so).
	ctype := cmp.Or(q.Get("content_type"), "application/octet-stream")
	if err := rec.receive(req, body, r.ContentLength, name, contentType(ctype, name)); err != nil {
		return nil, err
	}
	return req, nil
}
