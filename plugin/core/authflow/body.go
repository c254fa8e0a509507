package authflow

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/textproto"
	"net/url"
	"strings"
)

// Request bodies on the login and refresh routes are read as the app's body
// parser reads them (Koa's koa-body: co-body for JSON and forms, with qs;
// formidable for multipart; Express's and Go's parsers agree on the
// common cases), so that what the filter checks is what the app uses.
// Where the parsers differ, the readers here collect every value one of
// them could hand the app (the refresh route refuses the request when any
// is revoked) or refuse a body whose reading is ambiguous.

// utf8BOM is stripped before a body is read, as co-body's decoder does.
const utf8BOM = "\xef\xbb\xbf"

func stripBOM(body []byte) []byte { return bytes.TrimPrefix(body, []byte(utf8BOM)) }

func mediaType(contentType string) string {
	mt, _, _ := strings.Cut(contentType, ";")
	return strings.ToLower(strings.TrimSpace(mt))
}

func isForm(contentType string) bool {
	return mediaType(contentType) == "application/x-www-form-urlencoded"
}

// isMultipart: koa-body takes every multipart/* type for multipart.
func isMultipart(contentType string) bool {
	return strings.HasPrefix(mediaType(contentType), "multipart/")
}

// formValues are the values of the fields of an urlencoded body whose name
// is path once read as qs reads names (allowDots, as co-body sets it):
// "a.b", "a[b]", ".a.b" and "[a][b]" are all a.b; a trailing "[]" (an
// array, which the app does not take for a string) still counts. In body
// order; a pair whose escapes do not decode is read as it is, as qs does.
func formValues(body []byte, path string) []string {
	want := strings.Split(path, ".")
	var out []string
	for pairs := string(stripBOM(body)); pairs != ""; {
		var pair string
		pair, pairs, _ = strings.Cut(pairs, "&")
		k, v, _ := strings.Cut(pair, "=")
		if !sameSegments(formKeySegments(unescapeForm(k)), want) {
			continue
		}
		out = append(out, unescapeForm(v))
	}
	return out
}

func unescapeForm(s string) string {
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return strings.ReplaceAll(s, "+", " ")
}

// formKeySegments splits a form field name into qs's nesting: on '.', '['
// and ']', empty segments dropped.
func formKeySegments(k string) []string {
	return strings.FieldsFunc(k, func(r rune) bool { return r == '.' || r == '[' || r == ']' })
}

func sameSegments(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// ErrAmbiguousBody: a multipart body parsers read differently (a boundary
// or a part's name given twice, an unknown transfer encoding).
var ErrAmbiguousBody = errors.New("body parsers disagree on this body")

// multipartValues are the values of the parts of a multipart body named
// path (its qs spellings too), in order. A part counts whatever its
// disposition type or file name (formidable takes a part without a
// content type for a field, whatever its file name, and reads the name of
// any disposition); base64 and quoted-printable parts are decoded.
// Ambiguous bodies are an error wrapping ErrAmbiguousBody, malformed ones
// ErrUnreadableBody.
func multipartValues(body []byte, contentType, path string) ([]string, error) {
	if strings.Count(strings.ToLower(contentType), "boundary=") > 1 {
		// formidable takes the first "boundary=" anywhere (xboundary=…
		// too), Go's parser the parameter: refused, not guessed.
		return nil, fmt.Errorf("%w: the content type names boundary= more than once", ErrAmbiguousBody)
	}
	_, params, err := mime.ParseMediaType(contentType)
	if err != nil || params["boundary"] == "" {
		return nil, fmt.Errorf("%w: multipart content type %q", ErrUnreadableBody, truncateForError(contentType))
	}
	want := strings.Split(path, ".")
	r := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	var out []string
	for {
		p, err := r.NextRawPart() // no transparent decoding: done below, for all encodings alike
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%w: multipart body: %v", ErrUnreadableBody, err)
		}
		name, err := partName(p.Header)
		if err != nil {
			return nil, err
		}
		if !sameSegments(formKeySegments(name), want) {
			continue
		}
		raw, err := io.ReadAll(p)
		if err != nil {
			return nil, fmt.Errorf("%w: multipart part: %v", ErrUnreadableBody, err)
		}
		v, err := decodePart(p.Header.Get("Content-Transfer-Encoding"), raw)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
}

// partName is a part's name parameter; a disposition given twice, or one
// that does not parse (a parameter given twice), is ambiguous.
func partName(h textproto.MIMEHeader) (string, error) {
	cd := h.Values("Content-Disposition")
	switch len(cd) {
	case 0:
		return "", nil
	case 1:
	default:
		return "", fmt.Errorf("%w: a part with %d Content-Disposition headers", ErrAmbiguousBody, len(cd))
	}
	_, params, err := mime.ParseMediaType(cd[0])
	if err != nil {
		return "", fmt.Errorf("%w: Content-Disposition %q: %v", ErrAmbiguousBody, truncateForError(cd[0]), err)
	}
	return params["name"], nil
}

func decodePart(cte string, raw []byte) (string, error) {
	switch strings.ToLower(strings.TrimSpace(cte)) {
	case "", "7bit", "8bit", "binary":
		return string(raw), nil
	case "base64":
		b, err := io.ReadAll(base64.NewDecoder(base64.StdEncoding, newlineDropper{bytes.NewReader(raw)}))
		if err != nil {
			return "", fmt.Errorf("%w: base64 part: %v", ErrUnreadableBody, err)
		}
		return string(b), nil
	case "quoted-printable":
		b, err := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(raw)))
		if err != nil {
			return "", fmt.Errorf("%w: quoted-printable part: %v", ErrUnreadableBody, err)
		}
		return string(b), nil
	}
	return "", fmt.Errorf("%w: Content-Transfer-Encoding %q", ErrAmbiguousBody, truncateForError(cte))
}

// newlineDropper drops CR and LF (base64 bodies are wrapped).
type newlineDropper struct{ r io.Reader }

func (d newlineDropper) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	w := 0
	for _, c := range p[:n] {
		if c != '\r' && c != '\n' {
			p[w] = c
			w++
		}
	}
	return w, err
}

func truncateForError(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
