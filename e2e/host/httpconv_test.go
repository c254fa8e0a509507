package host_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/meshsession/meshsession/e2e/host"
)

func TestHTTPConversions(t *testing.T) {
	r := httptest.NewRequest(http.MethodPost, "http://app.local/api/x?y=1", nil)
	r.Header.Add("X-B", "2")
	r.Header.Add("X-A", "1")
	r.Header.Add("X-A", "3")
	assert.Equal(t, [][2]string{
		{":authority", "app.local"}, {":path", "/api/x?y=1"}, {":method", "POST"}, {":scheme", "http"},
		{"x-a", "1"}, {"x-a", "3"}, {"x-b", "2"},
	}, host.RequestPairs(r))

	assert.Equal(t, [][2]string{{":status", "201"}, {"content-type", "text/plain"}},
		host.ResponsePairs(201, http.Header{"Content-Type": {"text/plain"}}))

	pseudo, h := host.SplitPairs([][2]string{{":path", "/a"}, {"x-k", "v"}, {":path", "/b"}, {"x-k", "w"}})
	assert.Equal(t, map[string]string{":path": "/a"}, pseudo)
	assert.Equal(t, []string{"v", "w"}, h.Values("X-K"))
}
