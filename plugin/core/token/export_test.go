package token

import (
	"strings"

	"github.com/tidwall/gjson"
)

// parseClaimsGJSON is the straightforward reference implementation of
// ParseClaims (gjson.Valid, then gjson.ForEach), kept for differential
// fuzzing of the one-pass scanner.
func parseClaimsGJSON(payload string, names ClaimNames) (Claims, error) {
	if !isObject(payload) {
		return Claims{}, ErrNotObject
	}
	var c Claims
	var err error
	seen := map[string]bool{}
	ids := newIDPick(names)
	gjson.Parse(payload).ForEach(func(k, v gjson.Result) bool {
		name := k.Str
		if seen[name] {
			err = &ClaimError{Claim: name}
			return false
		}
		if len(seen) == MaxMembers {
			err = ErrTooManyMembers
			return false
		}
		seen[name] = true
		switch name {
		case "iat", "exp", "nbf":
			if v.Type != gjson.Number {
				err = &ClaimError{Claim: name, Want: "a number"}
				return false
			}
			n, ok := numberValue(v.Raw), true
			switch name {
			case "iat":
				c.IssuedAt, c.HasIssuedAt = n, ok
			case "exp":
				c.ExpiresAt, c.HasExpiresAt = n, ok
			default:
				c.NotBefore, c.HasNotBefore = n, ok
			}
			return true
		case "iss":
			if v.Type != gjson.String {
				err = &ClaimError{Claim: name, Want: "a string"}
				return false
			}
			c.Issuer = v.Str
			return true
		case "aud":
			switch {
			case v.Type == gjson.String && !strings.HasPrefix(v.Str, "["):
				c.Audience = v.Str
			case v.IsArray():
				for _, e := range v.Array() {
					if e.Type != gjson.String {
						err = &ClaimError{Claim: name, Want: "a string or an array of strings"}
						return false
					}
				}
				c.Audience = v.Raw
			default:
				err = &ClaimError{Claim: name, Want: "a string or an array of strings"}
				return false
			}
			return true
		}
		if si, ui := ids.rank(name); si >= 0 || ui >= 0 {
			s, ok, bad := idValue(v)
			if bad {
				err = &ClaimError{Claim: name, Want: wantID}
				return false
			}
			if ok {
				ids.offer(&c, si, ui, s)
			}
		}
		return true
	})
	if err != nil {
		return Claims{}, err
	}
	return c, nil
}

func idValue(v gjson.Result) (string, bool, bool) {
	switch v.Type {
	case gjson.String:
		if !ValidID(v.Str) {
			return "", false, true
		}
		return v.Str, v.Str != "", false
	case gjson.Number:
		if IsIntLiteral(v.Raw) {
			return v.Raw, true, false
		}
	}
	return "", false, false
}

// ParseClaimsReference exposes the reference implementation to tests.
var ParseClaimsReference = parseClaimsGJSON
