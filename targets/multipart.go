package targets

import (
	"bytes"
	"fmt"
	"io"
	"mime/multipart"
	"net/textproto"
	"strings"
)

// Field is a plain form field of a multipart body.
type Field struct{ Name, Value string }

// MultipartBody streams fields then one file part holding size bytes from
// file, without buffering the file. It returns the body, its exact length
// (so the request carries a Content-Length, which many servers insist on) and
// its Content-Type.
func MultipartBody(fields []Field, fileField, filename, contentType string, file io.Reader, size int64) (io.Reader, int64, string, error) {
	var head bytes.Buffer
	w := multipart.NewWriter(&head)
	for _, f := range fields {
		if err := w.WriteField(f.Name, f.Value); err != nil {
			return nil, 0, "", fmt.Errorf("multipart field %s: %w", f.Name, err)
		}
	}
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", FormDataDisposition(fileField, filename))
	if contentType == "" {
		contentType = "application/octet-stream"
	}
	h.Set("Content-Type", contentType)
	if _, err := w.CreatePart(h); err != nil {
		return nil, 0, "", fmt.Errorf("multipart file part: %w", err)
	}
	headBytes := bytes.Clone(head.Bytes())
	head.Reset()
	if err := w.Close(); err != nil {
		return nil, 0, "", err
	}
	tail := head.String() // the closing boundary
	body := io.MultiReader(bytes.NewReader(headBytes), io.LimitReader(file, size), strings.NewReader(tail))
	return body, int64(len(headBytes)) + size + int64(len(tail)), w.FormDataContentType(), nil
}

// FormDataDisposition is the Content-Disposition of a multipart/form-data
// file part, as RFC 7578 §4.2 asks: the filename in UTF-8 inside
// filename="...", with '"', CR and LF percent-encoded (as browsers do), and
// no RFC 5987 filename*, which §4.2 says senders must not use.
func FormDataDisposition(field, filename string) string {
	return "form-data; name=" + formQuote(field) + "; filename=" + formQuote(filename)
}

// formQuote is an RFC 7578 quoted value: '"', CR and LF percent-encoded, a
// backslash doubled so that a receiver parsing RFC 2616 quoted strings
// reads it back.
func formQuote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, "%22", "\r", "%0D", "\n", "%0A").Replace(s) + `"`
}

// ContentDisposition appends the filename to a disposition such as
// "attachment" or `form-data; name="file"`: a plain filename= for ASCII
// names, and the RFC 5987 filename*=UTF-8” form as well for others, so that
// 'Facture été 2026.pdf' arrives as given.
func ContentDisposition(disposition, filename string) string {
	ascii := true
	for _, r := range filename {
		if r < 0x20 || r > 0x7e {
			ascii = false
			break
		}
	}
	if ascii {
		return disposition + "; filename=" + quote(filename)
	}
	return disposition + "; filename=" + quote(asciiFallback(filename)) + "; filename*=UTF-8''" + pathEscape(filename)
}

func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\r", "", "\n", "").Replace(s) + `"`
}

func asciiFallback(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r < 0x20 || r > 0x7e {
			b.WriteByte('_')
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// pathEscape percent-encodes everything but RFC 5987 attr-chars.
func pathEscape(s string) string {
	const attr = "!#$&+-.^_`|~"
	var b strings.Builder
	for _, c := range []byte(s) {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte(attr, c) >= 0 {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}
