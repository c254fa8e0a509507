package sessionview

import (
	"encoding/json"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// MarshalJSON is AppendJSON, so that a Session inside any other answer is
// written the same way.
func (v Session) MarshalJSON() ([]byte, error) { return AppendJSON(nil, &v) }

// plain has Session's fields and tags without its methods.
type plain Session

// AppendJSON appends the JSON of v to b: the bytes json.Marshal writes for
// Session's fields (field order, nulls, omitted fields, HTML-safe string
// escapes), times in TimeLayout, without reflection or an allocation per
// field.
// A page of 1,000 sessions (the export's, a list without pageSize) took
// json.Marshal about 6 ms. A value json.Marshal refuses (a NaN latitude, a
// time past year 9999) is handed to json.Marshal, whose error is returned.
func AppendJSON(b []byte, v *Session) ([]byte, error) {
	if !encodable(v) {
		out, err := json.Marshal((*plain)(v))
		if err != nil {
			return b, err
		}
		return append(b, out...), nil
	}
	b = append(b, `{"id":`...)
	b = appendString(b, v.ID)
	b = append(b, `,"documentId":`...)
	b = appendString(b, v.DocumentID)
	b = append(b, `,"sessionId":`...)
	b = appendString(b, v.SessionID)
	b = append(b, `,"userId":`...)
	b = appendString(b, v.UserID)
	b = append(b, `,"user":{"id":`...)
	if len(v.User.ID) == 0 {
		b = append(b, "null"...)
	} else {
		b = append(b, v.User.ID...) // compact: UserIDJSON's
	}
	b = append(b, `,"documentId":`...)
	b = appendStringPtr(b, v.User.DocumentID)
	b = append(b, `,"email":`...)
	b = appendStringPtr(b, v.User.Email)
	b = append(b, `,"username":`...)
	b = appendStringPtr(b, v.User.Username)
	b = append(b, `},"ipAddress":`...)
	b = appendString(b, v.IPAddress)
	b = append(b, `,"userAgent":`...)
	b = appendString(b, v.UserAgent)
	b = append(b, `,"loginTime":`...)
	b = appendTime(b, v.LoginTime)
	b = append(b, `,"lastActive":`...)
	b = appendTime(b, v.LastActive)
	b = append(b, `,"logoutTime":`...)
	b = appendTimePtr(b, v.LogoutTime)
	b = append(b, `,"isActive":`...)
	b = strconv.AppendBool(b, v.IsActive)
	b = append(b, `,"terminatedManually":`...)
	b = strconv.AppendBool(b, v.TerminatedManually)
	b = append(b, `,"terminationReason":`...)
	b = appendStringPtr(b, v.TerminationReason)
	b = append(b, `,"deviceType":`...)
	b = appendString(b, v.DeviceType)
	b = append(b, `,"browserName":`...)
	b = appendString(b, v.BrowserName)
	b = append(b, `,"osName":`...)
	b = appendString(b, v.OSName)
	b = append(b, `,"geoLocation":`...)
	if g := v.GeoLocation; g == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, `{"country":`...)
		b = appendStringPtr(b, g.Country)
		b = append(b, `,"country_code":`...)
		b = appendStringPtr(b, g.CountryCode)
		b = append(b, `,"country_flag":`...)
		b = appendStringPtr(b, g.CountryFlag)
		b = append(b, `,"city":`...)
		b = appendStringPtr(b, g.City)
		b = append(b, `,"region":`...)
		b = appendStringPtr(b, g.Region)
		b = append(b, `,"timezone":`...)
		b = appendStringPtr(b, g.Timezone)
		b = append(b, `,"latitude":`...)
		b = appendFloatPtr(b, g.Latitude)
		b = append(b, `,"longitude":`...)
		b = appendFloatPtr(b, g.Longitude)
		b = append(b, '}')
	}
	b = append(b, `,"securityScore":`...)
	if v.SecurityScore == nil {
		b = append(b, "null"...)
	} else {
		b = strconv.AppendInt(b, int64(*v.SecurityScore), 10)
	}
	b = append(b, `,"scoreReasons":`...)
	if v.ScoreReasons == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, r := range v.ScoreReasons {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, r)
		}
		b = append(b, ']')
	}
	b = append(b, `,"createdAt":`...)
	b = appendTime(b, v.CreatedAt)
	b = append(b, `,"updatedAt":`...)
	b = appendTime(b, v.UpdatedAt)
	if v.IsCurrentSession != nil {
		b = append(b, `,"isCurrentSession":`...)
		b = strconv.AppendBool(b, *v.IsCurrentSession)
	}
	b = append(b, `,"isTrulyActive":`...)
	b = strconv.AppendBool(b, v.IsTrulyActive)
	b = append(b, `,"minutesSinceActive":`...)
	b = strconv.AppendInt(b, int64(v.MinutesSinceActive), 10)
	b = append(b, `,"route":`...)
	b = appendString(b, v.Route)
	b = append(b, `,"expiresAt":`...)
	b = appendTimePtr(b, v.ExpiresAt)
	if v.Discovered {
		b = append(b, `,"discovered":true`...)
	}
	return append(b, '}'), nil
}

// AppendListJSON appends the JSON array of list (json.Marshal's bytes for
// it; an empty or nil list is []).
func AppendListJSON(b []byte, list []Session) ([]byte, error) {
	b = append(b, '[')
	for i := range list {
		if i > 0 {
			b = append(b, ',')
		}
		var err error
		if b, err = AppendJSON(b, &list[i]); err != nil {
			return b, err
		}
	}
	return append(b, ']'), nil
}

// encodable reports that AppendJSON writes v itself: json.Marshal refuses
// NaN and infinite numbers and times outside years 0–9999; and v.User.ID must be one JSON value as
// UserIDJSON makes it (json.Marshal would validate and compact it).
func encodable(v *Session) bool {
	if len(v.User.ID) > 0 && !plainJSONValue(v.User.ID) {
		return false
	}
	if g := v.GeoLocation; g != nil {
		for _, f := range []*float64{g.Latitude, g.Longitude} {
			if f != nil && (math.IsNaN(*f) || math.IsInf(*f, 0)) {
				return false
			}
		}
	}
	for _, t := range []*time.Time{&v.LoginTime, &v.LastActive, v.LogoutTime, &v.CreatedAt, &v.UpdatedAt, v.ExpiresAt} {
		if t == nil {
			continue
		}
		if y := t.UTC().Year(); y < 0 || y > 9999 {
			return false
		}
	}
	return true
}

// plainJSONValue reports that raw is a JSON number of digits or a JSON
// string without escapes json.Marshal would write differently: what
// UserIDJSON makes, copied as it is.
func plainJSONValue(raw json.RawMessage) bool {
	if raw[0] != '"' {
		for _, c := range raw {
			if c < '0' || c > '9' {
				return false
			}
		}
		return true
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return false
	}
	return string(appendString(nil, s)) == string(raw)
}

func appendStringPtr(b []byte, s *string) []byte {
	if s == nil {
		return append(b, "null"...)
	}
	return appendString(b, *s)
}

// TimeLayout is how the API writes a session's times: UTC, always three
// fractional digits, as JavaScript's Date.prototype.toISOString (the
// Strapi plugin's answers) writes them — "2026-12-03T18:22:20.920Z", where
// RFC 3339 with nanoseconds dropped trailing zeros ("…20.92Z", "…:07Z")
// and broke fixed-pattern parsers and string order.
const TimeLayout = "2006-01-02T15:04:05.000Z07:00"

func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, TimeLayout)
	return append(b, '"')
}

func appendTimePtr(b []byte, t *time.Time) []byte {
	if t == nil {
		return append(b, "null"...)
	}
	return appendTime(b, *t)
}

// appendFloatPtr writes a float64 as encoding/json does.
func appendFloatPtr(b []byte, f *float64) []byte {
	if f == nil {
		return append(b, "null"...)
	}
	format := byte('f')
	if abs := math.Abs(*f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, *f, format, -1, 64)
	if format == 'e' {
		// e-09 → e-9, as encoding/json writes it.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

const hexDigits = "0123456789abcdef"

// appendString writes s as a JSON string as encoding/json does (with its
// HTML escaping): <, >, & and control characters as \u00XX (\b \f \n \r
// \t short), invalid UTF-8 as \ufffd, U+2028 and U+2029 escaped.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
