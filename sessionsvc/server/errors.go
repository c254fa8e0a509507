package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"strings"

	"github.com/meshsession/meshsession/internal/strapi"
	"github.com/meshsession/meshsession/sessionsvc/store"
)

// apiError is an error with an HTTP status, shown to the client.
type apiError struct {
	Status  int
	Message string
	Details map[string]any
	// Reason, when set, is also sent as X-Session-Terminated-Reason.
	Reason string
	cause  error
}

func (e *apiError) Error() string {
	if e.cause != nil {
		return e.Message + ": " + e.cause.Error()
	}
	return e.Message
}

func (e *apiError) Unwrap() error { return e.cause }

func badRequest(format string, args ...any) *apiError {
	return &apiError{Status: http.StatusBadRequest, Message: fmt.Sprintf(format, args...)}
}

func notFound(msg string) *apiError { return &apiError{Status: http.StatusNotFound, Message: msg} }

// toAPIError maps any error to the answer the client sees. Store errors
// become 404/409/503; anything unexpected is a 500 with a generic message
// (the detail goes to the log only).
func toAPIError(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return &apiError{Status: http.StatusRequestEntityTooLarge, Message: fmt.Sprintf("request body larger than %d bytes", mbe.Limit), cause: err}
	case errors.Is(err, store.ErrUnavailable):
		return &apiError{Status: http.StatusServiceUnavailable, Message: "database unavailable, retry later", cause: err}
	case errors.Is(err, store.ErrInvalid):
		return &apiError{Status: http.StatusBadRequest, Message: strings.TrimSuffix(err.Error(), ": "+store.ErrInvalid.Error()), cause: err}
	case errors.Is(err, store.ErrNotFound):
		return &apiError{Status: http.StatusNotFound, Message: "not found", cause: err}
	case errors.Is(err, store.ErrConflict):
		return &apiError{Status: http.StatusConflict, Message: "conflict", cause: err}
	case errors.Is(err, context.DeadlineExceeded):
		return &apiError{Status: http.StatusServiceUnavailable, Message: "timed out, retry later", cause: err}
	case errors.Is(err, context.Canceled):
		return &apiError{Status: 499, Message: "client closed the request", cause: err}
	default:
		return &apiError{Status: http.StatusInternalServerError, Message: "internal error", cause: err}
	}
}

// writeJSON answers status with v as JSON (strapi.WriteJSON).
func writeJSON(w http.ResponseWriter, status int, v any) { strapi.WriteJSON(w, status, v) }

// writeJSONBody writes a JSON answer whose body b already ends in a newline.
func writeJSONBody(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	ae := toAPIError(err)
	level := slog.LevelInfo
	switch {
	case ae.Status >= 500:
		level = slog.LevelError
		if ae.Status == http.StatusServiceUnavailable {
			level = slog.LevelWarn
		}
	case ae.Status == 499:
		level = slog.LevelDebug
	}
	log.Log(r.Context(), level, "request failed", "method", r.Method, "path", r.URL.Path,
		"status", ae.Status, "msg", ae.Message, "err", ae.cause)
	if ae.Status == 499 {
		return // nobody is listening
	}
	details := ae.Details
	if ae.Reason != "" {
		w.Header().Set("X-Session-Terminated-Reason", ae.Reason)
		if details == nil {
			details = map[string]any{}
		}
		details["reason"] = ae.Reason
	}
	WriteError(w, ae.Status, ae.Message, details)
}

// WriteError answers status in Strapi's error envelope, named as Strapi
// names the status, details an object (never null), with Retry-After on a
// 503. The dashboard's own API answers its errors through it too.
func WriteError(w http.ResponseWriter, status int, msg string, details map[string]any) {
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	strapi.WriteError(w, status, strapi.ErrorName(status), msg, details)
}

// decodeJSON reads exactly one JSON value into v, refusing unknown fields
// and trailing data. The body size is limited by the route (MaxBytesReader).
func decodeJSON(r *http.Request, v any) error {
	// The internal API takes JSON whatever the plugin labels it; the public
	// APIs refuse bodies declared as something else (forms, uploads).
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(r.URL.Path, "/internal/") &&
		!IsJSONType(ct) {
		return &apiError{Status: http.StatusUnsupportedMediaType, Message: "Content-Type must be application/json"}
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return badRequest("invalid JSON body: unexpected data after the JSON value")
	}
	CleanText(v)
	return nil
}

// IsJSONType reports whether a Content-Type names JSON: application/json
// or a +json type, parameters aside ("application/jsonp" is not).
func IsJSONType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && (mt == "application/json" || strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}

func jsonError(err error) error {
	var mbe *http.MaxBytesError
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &mbe):
		return err
	case errors.Is(err, io.EOF):
		return badRequest("request body is required (JSON)")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("invalid JSON body: unexpected end of input")
	case errors.As(err, &se):
		return badRequest("invalid JSON body at byte %d: %v", se.Offset, se)
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			field = "(root)"
		}
		return &apiError{Status: http.StatusBadRequest, Message: fmt.Sprintf("invalid JSON body: field %s must be %s, got %s", field, te.Type, te.Value),
			Details: map[string]any{"field": field}}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		f := strings.TrimPrefix(err.Error(), "json: unknown field ")
		return &apiError{Status: http.StatusBadRequest, Message: "invalid JSON body: unknown field " + f,
			Details: map[string]any{"field": strings.Trim(f, `"`)}}
	case isReadError(err):
		return bodyReadError(err)
	default:
		return badRequest("invalid JSON body: %v", err)
	}
}

// BodyReadProblem is the status and message for a request body that could
// not be read: 413 past the limit, 408 when the client stopped sending,
// else 400 (the connection closed mid-body). Socket addresses stay in the
// log.
func BodyReadProblem(err error) (int, string) {
	var mbe *http.MaxBytesError
	var ne net.Error
	switch {
	case errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge, "request body too large"
	case errors.As(err, &ne) && ne.Timeout():
		return http.StatusRequestTimeout, "request body not received in time"
	default:
		return http.StatusBadRequest, "request body could not be read (incomplete)"
	}
}

func bodyReadError(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return err // mapped to 413 where errors are written
	}
	status, msg := BodyReadProblem(err)
	return &apiError{Status: status, Message: msg, cause: err}
}

// isReadError: err came from reading the body, not from its JSON.
func isReadError(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed)
}

// readOptionalJSON decodes the body when there is one.
func readOptionalJSON(r *http.Request, v any) error {
	if r.ContentLength == 0 && r.Header.Get("Transfer-Encoding") == "" {
		return nil
	}
	err := decodeJSON(r, v)
	var ae *apiError
	if errors.As(err, &ae) && ae.Message == "request body is required (JSON)" {
		return nil
	}
	return err
}
