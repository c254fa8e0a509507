package server

import (
	_ "embed"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"sigs.k8s.io/yaml"
)

// openAPIYAML describes the user, admin and internal APIs (OpenAPI 3.1).
// It is written in YAML for reading and served as JSON.
//
//go:embed openapi.yaml
var openAPIYAML []byte

// openAPIJSON converts the embedded document once (it never changes).
var openAPIJSON = sync.OnceValues(func() ([]byte, error) {
	js, err := yaml.YAMLToJSON(openAPIYAML)
	if err != nil {
		return nil, fmt.Errorf("openapi.yaml: %w", err)
	}
	return js, nil
})

// OpenAPI returns the OpenAPI 3.1 document served at GET /openapi.json.
func OpenAPI() ([]byte, error) { return openAPIJSON() }

func (s *Server) serveOpenAPI(w http.ResponseWriter, r *http.Request) error {
	js, err := openAPIJSON()
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_, _ = w.Write(js)
	return nil
}

// Routes lists the "METHOD /path" patterns the server registered (its
// own routes, not Config.Mounts), in registration order: what the OpenAPI
// document must describe.
func (s *Server) Routes() []string {
	out := make([]string, 0, len(s.patterns))
	for _, p := range s.patterns {
		if strings.Contains(p, " ") {
			out = append(out, p)
		}
	}
	return out
}
