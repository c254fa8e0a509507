package protostruct_test

import "encoding/json"

func validJSON(s string) bool { return json.Valid([]byte(s)) }
