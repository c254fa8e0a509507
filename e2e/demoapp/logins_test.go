package demoapp

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestLoginRequestsCountsCredentialsReceived(t *testing.T) {
	a := New(Config{})
	post := func(body string) int {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "/api/auth/local", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		a.ServeHTTP(rec, req)
		return rec.Code
	}
	if c := post(`{"identifier":"alice","password":"wrong"}`); c != http.StatusBadRequest {
		t.Fatalf("wrong password: %d", c)
	}
	if c := post(`{"identifier":"alice","password":"alice-password"}`); c != http.StatusOK {
		t.Fatalf("right password: %d", c)
	}
	post(`{"identifier":"alice","pass`) // cut off: the credentials never arrived
	if n := a.LoginRequests(); n != 2 {
		t.Fatalf("LoginRequests = %d, want 2", n)
	}
}
