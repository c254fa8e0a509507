package server

import (
	"bytes"
	"encoding/json"
)

type rawJSON = json.RawMessage

// jsonObjectHasOnlyKey reports whether body is a JSON object whose only key is key.
func jsonObjectHasOnlyKey(body []byte, key string) bool {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return false
	}
	_, ok := m[key]
	return ok && len(m) == 1
}

func decodeStrictBytes(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}
