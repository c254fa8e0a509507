package authflow

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/meshsession/meshsession/plugin/protocol"
)

// MaxIdentifierLen bounds the identifier the filter sends (bytes, cut on a
// rune boundary); sessionsvc normalises it further (trimmed, case-folded,
// a digest past 128 bytes).
const MaxIdentifierLen = 1024

// LoginIdentifier reads the login name from a login request body, so that
// the pre-login check and the failed-login report count the same name the
// app will check. The body is read as the app's parser reads it, by its
// content type (body.go), a UTF-8 BOM aside:
//
//   - application/x-www-form-urlencoded: the first field named path as qs
//     reads names ("[identifier]" and ".identifier" are identifier);
//   - multipart/* (Strapi's body parser reads it by default): the first
//     part so named;
//   - anything else whose body parses as JSON: the value at path, the last
//     of a repeated key; a string as is, any other JSON value as its JSON
//     text (an array or object is still a name an attacker tries, counted
//     as such);
//   - missing, empty or unreadable: "" (all such logins share one counter).
//
// A field repeated in a form counts its first value (Go's FormValue;
// Node's parsers make an array the app refuses). The result is bounded by
// MaxIdentifierLen.
func LoginIdentifier(body []byte, contentType, path string) string {
	if path == "" || len(body) == 0 || len(body) > MaxBodyLen {
		return ""
	}
	body = stripBOM(body)
	var v string
	switch {
	case isForm(contentType):
		if vs := formValues(body, path, 1); len(vs) > 0 {
			v = vs[0]
		}
	case isMultipart(contentType):
		if vs, err := multipartValues(body, contentType, path, 1); err == nil && len(vs) > 0 {
			v = vs[0]
		}
	default:
		root, err := parseBody(body)
		if err != nil {
			break
		}
		switch r := lastAt(root, path); r.Type {
		case gjson.Null:
		case gjson.String:
			v = r.Str
		default:
			v = r.Raw
		}
	}
	return boundIdentifier(v)
}

// lastAt is r at path where a key repeated in an object resolves to its
// last value, as JavaScript's JSON.parse, Go's encoding/json and Python
// read it (gjson alone would take the first: {"identifier":"decoy",
// "identifier":"victim"} would be checked as decoy and logged in as
// victim). Paths with gjson's special characters are read by gjson.
func lastAt(r gjson.Result, path string) gjson.Result {
	if specialPath(path) {
		return r.Get(path)
	}
	for _, seg := range strings.Split(path, ".") {
		if !r.IsObject() {
			return gjson.Result{}
		}
		var found gjson.Result
		r.ForEach(func(k, v gjson.Result) bool {
			if k.Str == seg {
				found = v
			}
			return true
		})
		r = found
	}
	return r
}

// allAt is every value at path, through every repetition of each key on
// the way (a parser that keeps the first, or merges, reads one of them);
// it stops past limit values at a level (limit+1 are returned then).
func allAt(r gjson.Result, path string, limit int) []gjson.Result {
	if specialPath(path) {
		if v := r.Get(path); v.Exists() {
			return []gjson.Result{v}
		}
		return nil
	}
	level := []gjson.Result{r}
	for _, seg := range strings.Split(path, ".") {
		var next []gjson.Result
		for _, o := range level {
			if !o.IsObject() {
				continue
			}
			o.ForEach(func(k, v gjson.Result) bool {
				if k.Str == seg {
					next = append(next, v)
				}
				return len(next) <= limit
			})
		}
		level = next
	}
	return level
}

func specialPath(path string) bool { return strings.ContainsAny(path, `*?#|@\!=<>%[]{}()`) }

func boundIdentifier(s string) string {
	if len(s) <= MaxIdentifierLen {
		return s
	}
	cut := MaxIdentifierLen
	for cut > 0 && s[cut]&0xC0 == 0x80 { // not on a UTF-8 continuation byte
		cut--
	}
	return s[:cut]
}

// EncodeLoginCheck encodes c as its JSON wire form.
func EncodeLoginCheck(c protocol.LoginCheck) []byte { return encode(c) }

// ParseLoginCheckResponse parses sessionsvc's answer to a pre-login check.
// The decision is required; a deny needs a reason.
func ParseLoginCheckResponse(body []byte) (protocol.LoginCheckResponse, error) {
	r, d, err := parseAnswer("login check answer", body)
	if err != nil {
		return protocol.LoginCheckResponse{}, err
	}
	out := protocol.LoginCheckResponse{Decision: d, Reason: optString(r, "reason"), Message: optString(r, "message")}
	if v := r.Get("retryAfter"); v.Type == gjson.Number && v.Int() > 0 {
		out.RetryAfter = int(min(v.Int(), 7*24*3600))
	}
	if d == protocol.DecisionDeny && out.Reason == "" {
		return protocol.LoginCheckResponse{}, fmt.Errorf("login check answer: deny without a reason")
	}
	return out, nil
}

// LockedMessage is the message of a locked login (the Strapi plugin's
// 429 wording), used when sessionsvc sends none.
const LockedMessage = "Too many requests. Please try again later."

// Refusal is the local answer to a login the check denied.
type Refusal struct {
	Status  int
	Reason  string
	Headers [][2]string
	Body    []byte
}

// LoginRefusal builds the answer to a denied check: 429 with Retry-After
// for a lockout (reason locked), 403 for anything else (reason policy).
// It depends on the check's answer only, never on the request: the same
// lock gives the same bytes whatever password the request carried.
func LoginRefusal(ans protocol.LoginCheckResponse, errorBody func(status int, message, reason string) []byte) Refusal {
	hdrs := [][2]string{{"content-type", "application/json; charset=utf-8"}, {"cache-control", "no-store"}}
	if ans.Reason == protocol.ReasonLocked {
		retry := ans.RetryAfter
		if retry < 1 {
			retry = 1
		}
		msg := ans.Message
		if msg == "" {
			msg = LockedMessage
		}
		hdrs = append(hdrs, [2]string{"x-session-terminated-reason", protocol.ReasonLocked}, [2]string{"retry-after", strconv.Itoa(retry)})
		return Refusal{Status: 429, Reason: protocol.ReasonLocked, Headers: hdrs, Body: LockedBody(msg, retry)}
	}
	reason := ans.Reason
	if reason == "" || reason == protocol.ReasonLocked {
		reason = protocol.ReasonPolicy
	}
	msg := ans.Message
	if msg == "" {
		msg = "Login refused by policy"
	}
	hdrs = append(hdrs, [2]string{"x-session-terminated-reason", reason})
	return Refusal{Status: 403, Reason: reason, Headers: hdrs, Body: errorBody(403, msg, reason)}
}

// LockedBody is the Strapi plugin's 429 body:
// {"data":null,"error":{"status":429,"name":"TooManyRequestsError","message":M,"details":{"reason":"locked","retryAfter":N}}}
func LockedBody(message string, retryAfter int) []byte {
	b := make([]byte, 0, 160+len(message))
	b = append(b, `{"data":null,"error":{"status":429,"name":"TooManyRequestsError","message":`...)
	b = gjson.AppendJSONString(b, message)
	b = append(b, `,"details":{"reason":"locked","retryAfter":`...)
	b = strconv.AppendInt(b, int64(retryAfter), 10)
	return append(b, `}}}`...)
}
