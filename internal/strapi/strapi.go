// Package strapi writes HTTP answers in the shapes Strapi uses, for the
// servers that answer as Strapi does: sessionsvc (its user, admin and
// internal APIs and the dashboard's API) and the e2e demo app, which stands
// in for a Strapi application.
package strapi

import (
	"encoding/json"
	"net/http"
)

// ErrorEnvelope is Strapi's error answer: {"data":null,"error":{…}}.
type ErrorEnvelope struct {
	Data  any       `json:"data"` // always null
	Error ErrorBody `json:"error"`
}

// ErrorBody is Strapi's error object; details is always an object.
type ErrorBody struct {
	Status  int            `json:"status"`
	Name    string         `json:"name"`
	Message string         `json:"message"`
	Details map[string]any `json:"details"`
}

// encodeFailed is the 500 answer when an answer cannot be encoded.
const encodeFailed = `{"data":null,"error":{"status":500,"name":"InternalServerError","message":"encoding the answer failed","details":{}}}` + "\n"

// WriteJSON answers status with v as JSON and a trailing newline. A value
// that cannot be encoded becomes a 500 in the error envelope, never a
// truncated body.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	if err != nil {
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(encodeFailed))
		return
	}
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// errorNames are Strapi's error names by status.
var errorNames = map[int]string{
	400: "BadRequestError",
	401: "UnauthorizedError",
	403: "ForbiddenError",
	404: "NotFoundError",
	405: "MethodNotAllowedError",
	409: "ConflictError",
	413: "PayloadTooLargeError",
	415: "UnsupportedMediaTypeError",
	429: "TooManyRequestsError",
	500: "InternalServerError",
	501: "NotImplementedError",
	503: "ServiceUnavailableError",
}

// ErrorName is the name Strapi gives an error answered with status,
// "HttpError" for a status it has no name for.
func ErrorName(status int) string {
	if name, ok := errorNames[status]; ok {
		return name
	}
	return "HttpError"
}

// WriteError answers status in the error envelope, under the error name
// given (Strapi's names: "NotFoundError", "ValidationError", …); nil
// details are sent as {}.
func WriteError(w http.ResponseWriter, status int, name, msg string, details map[string]any) {
	if details == nil {
		details = map[string]any{}
	}
	WriteJSON(w, status, ErrorEnvelope{Error: ErrorBody{Status: status, Name: name, Message: msg, Details: details}})
}
