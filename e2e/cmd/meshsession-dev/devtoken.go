package main

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// devTokenFile keeps the development admin token next to the SQLite
// database (or in ./data for another database), so that `make run` signs
// the dashboard in with the same token after a restart.
const devTokenFile = "dev-admin-token"

// devAdminToken reads the kept development admin token, creating it (mode
// 0600) on first use.
func devAdminToken(databaseURL string) (string, error) {
	dir := "data"
	if p, ok := strings.CutPrefix(databaseURL, "sqlite://"); ok {
		p, _, _ = strings.Cut(p, "?")
		if p != "" && !strings.Contains(p, ":memory:") {
			dir = filepath.Dir(p)
		}
	}
	path := filepath.Join(dir, devTokenFile)
	b, err := os.ReadFile(path)
	if err == nil {
		if tok := strings.TrimSpace(string(b)); len(tok) >= 16 {
			return tok, nil
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("development admin token: %w", err)
	}
	raw := make([]byte, 24)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("development admin token: %w", err)
	}
	tok := "mss_dev_" + base64.RawURLEncoding.EncodeToString(raw)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("development admin token: %w", err)
	}
	if err := os.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("development admin token: %w", err)
	}
	return tok, nil
}
