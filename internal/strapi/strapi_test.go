package strapi_test

import (
	"math"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/meshsession/meshsession/internal/strapi"
)

func TestWrite(t *testing.T) {
	tests := []struct {
		name       string
		write      func(w http.ResponseWriter)
		wantStatus int
		wantBody   string
	}{
		{"json", func(w http.ResponseWriter) { strapi.WriteJSON(w, http.StatusCreated, map[string]any{"a": "<b>"}) },
			http.StatusCreated, `{"a":"\u003cb\u003e"}` + "\n"},
		{"unencodable", func(w http.ResponseWriter) { strapi.WriteJSON(w, http.StatusOK, math.Inf(1)) },
			http.StatusInternalServerError, `{"data":null,"error":{"status":500,"name":"InternalServerError","message":"encoding the answer failed","details":{}}}` + "\n"},
		{"error without details", func(w http.ResponseWriter) {
			strapi.WriteError(w, http.StatusNotFound, "NotFoundError", "Not Found", nil)
		},
			http.StatusNotFound, `{"data":null,"error":{"status":404,"name":"NotFoundError","message":"Not Found","details":{}}}` + "\n"},
		{"error with details", func(w http.ResponseWriter) {
			strapi.WriteError(w, http.StatusBadRequest, "ValidationError", "bad", map[string]any{"field": "x"})
		}, http.StatusBadRequest, `{"data":null,"error":{"status":400,"name":"ValidationError","message":"bad","details":{"field":"x"}}}` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			tt.write(w)
			assert.Equal(t, tt.wantStatus, w.Code)
			assert.Equal(t, "application/json; charset=utf-8", w.Header().Get("Content-Type"))
			assert.Equal(t, tt.wantBody, w.Body.String())
		})
	}
}

func TestErrorName(t *testing.T) {
	for status, want := range map[int]string{400: "BadRequestError", 404: "NotFoundError", 500: "InternalServerError",
		503: "ServiceUnavailableError", 418: "HttpError"} {
		assert.Equal(t, want, strapi.ErrorName(status), status)
	}
}
