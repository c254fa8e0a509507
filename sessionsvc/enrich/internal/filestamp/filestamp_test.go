package filestamp_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/sessionsvc/enrich/internal/filestamp"
)

func TestCheck(t *testing.T) {
	path := filepath.Join(t.TempDir(), "list.txt")
	var f filestamp.File
	base := time.Now().Add(-time.Hour)
	write := func(body string, mod time.Time) {
		require.NoError(t, os.WriteFile(path, []byte(body), 0o600))
		require.NoError(t, os.Chtimes(path, mod, mod))
	}

	// Each step starts from the state the one before left.
	steps := []struct {
		name        string
		do          func()
		wantChanged bool
		wantMissing bool
	}{
		{"missing at first: reported", func() {}, true, true},
		{"still missing: not again", func() {}, false, false},
		{"appears", func() { write("a", base) }, true, false},
		{"untouched", func() {}, false, false},
		{"same size, new time", func() { write("b", base.Add(time.Second)) }, true, false},
		{"same time, new size", func() { write("bb", base.Add(time.Second)) }, true, false},
		{"removed", func() { require.NoError(t, os.Remove(path)) }, true, true},
		{"back as it was", func() { write("bb", base.Add(time.Second)) }, true, false},
	}
	for _, s := range steps {
		s.do()
		fi, changed, err := f.Check(path)
		require.Equal(t, s.wantChanged, changed, s.name)
		if s.wantMissing {
			require.ErrorIs(t, err, fs.ErrNotExist, s.name)
			require.Nil(t, fi, s.name)
			continue
		}
		require.NoError(t, err, s.name)
		if changed {
			require.Equal(t, filepath.Base(path), fi.Name(), s.name)
		}
	}
}
