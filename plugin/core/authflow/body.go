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
	"slices"
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

// Encoded reports a Content-Encoding other than identity: a body the
// filter would read as compressed bytes where the app's parser (co-body)
// or the client inflates it.
func Encoded(contentEncoding string) bool {
	ce := strings.TrimSpace(contentEncoding)
	return ce != "" && !strings.EqualFold(ce, "identity")
}

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
// is path once read as qs reads names (qs.parse with allowDots, as co-body
// sets it; see qsKey): "a.b", "a[b]", ".a.b", "[a][b]" and "[a]x" are all
// a.b; an array marker ("[]") still counts. In body order; an escape that
// does not decode leaves its text as it is, as qs does. It stops after
// limit values (limit+1 are returned when there are more).
func formValues(body []byte, path string, limit int) []string {
	want := strings.Split(path, ".")
	var out []string
	for pairs := string(stripBOM(body)); pairs != ""; {
		var pair string
		pair, pairs, _ = strings.Cut(pairs, "&")
		// qs splits a pair at its first "]=" when it has one, else at
		// its first "=".
		eq := strings.Index(pair, "]=")
		if eq >= 0 {
			eq++
		} else {
			eq = strings.IndexByte(pair, '=')
		}
		k, v := pair, ""
		if eq >= 0 {
			k, v = pair[:eq], pair[eq+1:]
		}
		if !sameSegments(qsKey(unescapeForm(k)), want) {
			continue
		}
		if out = append(out, unescapeForm(v)); len(out) > limit {
			break
		}
	}
	return out
}

func unescapeForm(s string) string {
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return strings.ReplaceAll(s, "+", " ")
}

// qsDepth is qs's default depth: bracket groups past it stay one segment.
const qsDepth = 5

// qsKey splits a decoded form field name into the segments qs nests it by:
// with allowDots ".x" is "[x]" (x up to the next '.' or '['); the parent
// is the text before the first '['; then each bracket group without
// brackets inside, text between and after groups skipped (qs's child
// pattern moves on to the next '['), up to qsDepth groups, the rest of the
// name one last segment. Empty groups (array markers) are dropped.
func qsKey(k string) []string {
	if strings.IndexByte(k, '.') >= 0 {
		k = qsDots(k)
	}
	var segs []string
	open := strings.IndexByte(k, '[')
	if open < 0 {
		return []string{k}
	}
	if open > 0 {
		segs = append(segs, k[:open])
	}
	rest := k[open:]
	for range qsDepth {
		g := bracketGroup(rest)
		if g < 0 {
			return segs
		}
		end := g + 1 + strings.IndexByte(rest[g+1:], ']')
		if seg := rest[g+1 : end]; seg != "" {
			segs = append(segs, seg)
		}
		rest = rest[end+1:]
	}
	if g := bracketGroup(rest); g >= 0 {
		segs = append(segs, rest[g:]) // qs: "[" + the rest + "]", never a plain name
	}
	return segs
}

// qsDots is k with qs's allowDots rewrite: each ".x" (x up to the next '.'
// or '[') is "[x]".
func qsDots(k string) string {
	var b strings.Builder
	for i := 0; i < len(k); i++ {
		if k[i] == '.' && i+1 < len(k) && k[i+1] != '.' && k[i+1] != '[' {
			j := i + 1
			for j < len(k) && k[j] != '.' && k[j] != '[' {
				j++
			}
			b.WriteString("[" + k[i+1:j] + "]")
			i = j - 1
			continue
		}
		b.WriteByte(k[i])
	}
	return b.String()
}

// bracketGroup is the index of the first "[" in s that opens a group "[x]"
// with no bracket inside, or -1.
func bracketGroup(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] != '[' {
			continue
		}
		for j := i + 1; j < len(s); j++ {
			if s[j] == '[' {
				break
			}
			if s[j] == ']' {
				return i
			}
		}
	}
	return -1
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
// ErrUnreadableBody. It stops after limit values, as formValues.
func multipartValues(body []byte, contentType, path string, limit int) ([]string, error) {
	if strings.Count(strings.ToLower(contentType), "boundary=") > 1 {
		// formidable takes the first "boundary=" anywhere (xboundary=…
		// too), Go's parser the parameter: refused, not guessed.
		return nil, fmt.Errorf("%w: the content type names boundary= more than once", ErrAmbiguousBody)
	}
	_, params, err := mime.ParseMediaType(contentType)
	if err != nil || params["boundary"] == "" {
		return nil, fmt.Errorf("%w: multipart content type %q", ErrUnreadableBody, truncateForError(contentType))
	}
	if fb := formidableBoundary(contentType); fb != params["boundary"] {
		return nil, fmt.Errorf("%w: boundary %q to formidable, %q to Go", ErrAmbiguousBody, truncateForError(fb), truncateForError(params["boundary"]))
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
		names, err := partNames(p.Header)
		if err != nil {
			return nil, err
		}
		if !slices.ContainsFunc(names, func(n string) bool { return sameSegments(qsKey(n), want) }) {
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
		if out = append(out, v); len(out) > limit {
			return out, nil
		}
	}
}

// partNames are the names a part goes by: Go's name parameter and the name
// formidable reads (formidableName), which differ for some spellings
// (`x-name=a`, a quoted `"… name=a"`, `name*=` overriding `name=` in Go
// only); a part counts under either. A disposition given twice, or one
// that does not parse (a parameter given twice), is ambiguous.
func partNames(h textproto.MIMEHeader) ([]string, error) {
	cd := h.Values("Content-Disposition")
	switch len(cd) {
	case 0:
		return nil, nil
	case 1:
	default:
		return nil, fmt.Errorf("%w: a part with %d Content-Disposition headers", ErrAmbiguousBody, len(cd))
	}
	_, params, err := mime.ParseMediaType(cd[0])
	if err != nil {
		return nil, fmt.Errorf("%w: Content-Disposition %q: %v", ErrAmbiguousBody, truncateForError(cd[0]), err)
	}
	names := []string{params["name"]}
	if f, ok := formidableName(cd[0]); ok && f != params["name"] {
		names = append(names, f)
	}
	return names, nil
}

// formidableName is the part name formidable reads from a
// Content-Disposition value: the leftmost match of
// /\bname=("([^"]*)"|([^()<>@,;:\\"/[\]?={}\s\t/]+))/i.
func formidableName(v string) (string, bool) {
	const key = "name="
	for i := 0; i+len(key) <= len(v); i++ {
		if !strings.EqualFold(v[i:i+len(key)], key) || i > 0 && isWordByte(v[i-1]) {
			continue
		}
		rest := v[i+len(key):]
		if rest != "" && rest[0] == '"' {
			if end := strings.IndexByte(rest[1:], '"'); end >= 0 {
				return rest[1 : 1+end], true
			}
		}
		n := 0
		for n < len(rest) && !strings.ContainsRune("()<>@,;:\\\"/[]?={} \t\r\n\f\v", rune(rest[n])) {
			n++
		}
		if n > 0 {
			return rest[:n], true
		}
	}
	return "", false
}

func isWordByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_'
}

// formidableBoundary is the boundary formidable reads from a content type:
// /boundary=(?:"([^"]+)"|([^;]+))/i, the first match anywhere.
func formidableBoundary(ct string) string {
	i := strings.Index(strings.ToLower(ct), "boundary=")
	if i < 0 {
		return ""
	}
	rest := ct[i+len("boundary="):]
	if len(rest) > 1 && rest[0] == '"' {
		if end := strings.IndexByte(rest[1:], '"'); end > 0 {
			return rest[1 : 1+end]
		}
	}
	v, _, _ := strings.Cut(rest, ";")
	return v
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

// MaxJSONDepth bounds the nesting of a JSON request body the filter reads:
// gjson recurses once per level, and a 1 MiB body of "[" overflows the
// Wasm stack (the VM traps). No login or refresh body nests this deep.
const MaxJSONDepth = 128

// ErrTooDeep: a JSON body nests deeper than MaxJSONDepth.
var ErrTooDeep = fmt.Errorf("body nests deeper than %d levels", MaxJSONDepth)

// jsonDepthOK reports whether body nests at most MaxJSONDepth arrays and
// objects, counted without recursion (brackets inside strings aside).
func jsonDepthOK(body []byte) bool {
	depth, inStr := 0, false
	for i := 0; i < len(body); i++ {
		c := body[i]
		switch {
		case inStr:
			if c == '\\' {
				i++
			} else if c == '"' {
				inStr = false
			}
		case c == '"':
			inStr = true
		case c == '[' || c == '{':
			if depth++; depth > MaxJSONDepth {
				return false
			}
		case c == ']' || c == '}':
			depth--
		}
	}
	return true
}

// CheckLoginBody reports a login body the filter refuses to read (its
// identifier would go uncounted while the app reads it): a JSON body
// nesting deeper than MaxJSONDepth, a multipart body parsers read
// differently (ErrAmbiguousBody).
func CheckLoginBody(body []byte, contentType, path string) error {
	switch {
	case isForm(contentType):
		return nil
	case isMultipart(contentType):
		if _, err := multipartValues(stripBOM(body), contentType, path, 1); errors.Is(err, ErrAmbiguousBody) {
			return err
		}
		return nil
	case !jsonDepthOK(body):
		return ErrTooDeep
	}
	return nil
}

func truncateForError(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
