package token

import "github.com/tidwall/gjson"

// parseClaimsGJSON is the straightforward reference implementation of
// ParseClaims (gjson.Valid, then gjson.ForEach), kept for differential
// fuzzing of the one-pass scanner.
func parseClaimsGJSON(payload string, names ClaimNames) (Claims, error) {
	if !isObject(payload) {
		return Claims{}, ErrNotObject
	}
	var c Claims
	var err error
	sessIdx, userIdx := len(names.Session), len(names.User)
	var seen uint8
	var sessSeen, userSeen uint64
	gjson.Parse(payload).ForEach(func(k, v gjson.Result) bool {
		name := k.Str
		switch name {
		case "iat", "exp", "nbf":
			var bit uint8
			var dst *int64
			var has *bool
			switch name {
			case "iat":
				bit, dst, has = 1, &c.IssuedAt, &c.HasIssuedAt
			case "exp":
				bit, dst, has = 2, &c.ExpiresAt, &c.HasExpiresAt
			default:
				bit, dst, has = 4, &c.NotBefore, &c.HasNotBefore
			}
			if seen&bit != 0 {
				return true
			}
			seen |= bit
			if v.Type != gjson.Number {
				err = &ClaimError{Claim: name, Want: "a number"}
				return false
			}
			*dst, *has = numberValue(v.Raw), true
			return true
		}
		if i := indexOf(names.Session, name); i >= 0 && sessSeen&(1<<i) == 0 {
			sessSeen |= 1 << i
			if s, ok := idValue(v); ok && i < sessIdx {
				c.SessionID, sessIdx = s, i
			}
		}
		if i := indexOf(names.User, name); i >= 0 && userSeen&(1<<i) == 0 {
			userSeen |= 1 << i
			if s, ok := idValue(v); ok && i < userIdx {
				c.UserID, userIdx = s, i
			}
		}
		return true
	})
	if err != nil {
		return Claims{}, err
	}
	return c, nil
}

func idValue(v gjson.Result) (string, bool) {
	switch v.Type {
	case gjson.String:
		return v.Str, v.Str != ""
	case gjson.Number:
		if isIntLiteral(v.Raw) {
			return v.Raw, true
		}
	}
	return "", false
}

// ParseClaimsReference exposes the reference implementation to tests.
var ParseClaimsReference = parseClaimsGJSON
