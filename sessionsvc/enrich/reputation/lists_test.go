package reputation

import (
	"bytes"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseReportsMalformedLines(t *testing.T) {
	set, rep, err := Parse(strings.NewReader("192.0.2.1\nnot-an-ip\n\n# comment\n10.0.0.0/33\n2001:db8::/32\n1.1.1.9-1.1.1.1\n" + strings.Repeat("x", 5000) + "\n"))
	require.NoError(t, err)
	assert.Equal(t, 2, rep.Entries)
	assert.Equal(t, 4, rep.Malformed)
	require.Len(t, rep.Bad, 4)
	assert.Equal(t, []int{2, 5, 7, 8}, []int{rep.Bad[0].Line, rep.Bad[1].Line, rep.Bad[2].Line, rep.Bad[3].Line})
	assert.LessOrEqual(t, len(rep.Bad[3].Text), 80)
	assert.True(t, set.Contains(netip.MustParseAddr("192.0.2.1")))
	assert.True(t, set.Contains(netip.MustParseAddr("2001:db8::5")))
}

func TestParseTorExitAddresses(t *testing.T) {
	in := `ExitNode 0011BD2485AD45D984EC4159C88FC066E5E3300E
Published 2024-11-26 16:42:04
LastStatus 2024-11-26 17:00:00
ExitAddress 162.247.74.201 2024-11-26 17:05:11
ExitNode 0091174DE56EA6A7B0B0BA8CD8A4A4A2D9A1F5F4
ExitAddress 2a0b:f4c2::18 2024-11-26 17:06:00
`
	set, rep, err := Parse(strings.NewReader(in))
	require.NoError(t, err)
	assert.Zero(t, rep.Malformed)
	assert.Equal(t, 2, rep.Entries)
	assert.True(t, set.Contains(netip.MustParseAddr("162.247.74.201")))
	assert.True(t, set.Contains(netip.MustParseAddr("2a0b:f4c2::18")))
	assert.False(t, set.Contains(netip.MustParseAddr("162.247.74.202")))
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	require.NoError(t, os.WriteFile(tmp, []byte(content), 0o644))
	require.NoError(t, os.Rename(tmp, path))
}

func TestListsLoadAndReload(t *testing.T) {
	dir := t.TempDir()
	tor := filepath.Join(dir, "tor.txt")
	vpn := filepath.Join(dir, "vpn.txt")
	writeFile(t, tor, "192.0.2.1\n")
	writeFile(t, vpn, "198.51.100.0/24\nbogus\n")

	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	l := NewLists(Files{Tor: tor, VPN: vpn, Threat: filepath.Join(dir, "missing.txt")}, logger)

	assert.Equal(t, Flags{Tor: true}, l.Check(netip.MustParseAddr("192.0.2.1")))
	assert.Equal(t, Flags{VPN: true}, l.Check(netip.MustParseAddr("198.51.100.7")))
	assert.Equal(t, Flags{}, l.Check(netip.MustParseAddr("8.8.8.8")))
	assert.Contains(t, logs.String(), "line=2")
	assert.Contains(t, logs.String(), "missing")

	st := l.Status()
	require.Len(t, st, 3)
	assert.Equal(t, 1, st[1].Malformed)
	assert.False(t, st[2].Loaded)

	assert.False(t, l.Reload(), "nothing changed")

	// Replace the tor list (different size) and add the missing threat list.
	writeFile(t, tor, "192.0.2.2\n192.0.2.3\n")
	writeFile(t, filepath.Join(dir, "missing.txt"), "8.8.8.8\n")
	require.True(t, l.Reload())
	assert.Equal(t, Flags{}, l.Check(netip.MustParseAddr("192.0.2.1")))
	assert.Equal(t, Flags{Tor: true}, l.Check(netip.MustParseAddr("192.0.2.3")))
	assert.Equal(t, Flags{Threat: true}, l.Check(netip.MustParseAddr("8.8.8.8")))

	// Same size, new modification time.
	writeFile(t, tor, "192.0.2.9\n192.0.2.8\n")
	future := time.Now().Add(time.Minute)
	require.NoError(t, os.Chtimes(tor, future, future))
	require.True(t, l.Reload())
	assert.True(t, l.Check(netip.MustParseAddr("192.0.2.9")).Tor)

	// The file goes away: the list goes off, with a warning.
	require.NoError(t, os.Remove(tor))
	require.True(t, l.Reload())
	assert.False(t, l.Check(netip.MustParseAddr("192.0.2.9")).Tor)
}

func TestListsUnreadableFileKeepsPrevious(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "threat.txt")
	writeFile(t, p, "192.0.2.1\n")
	l := NewLists(Files{Threat: p}, nil)
	require.True(t, l.Check(netip.MustParseAddr("192.0.2.1")).Threat)

	// Replace the file by a directory: open works, reading fails.
	require.NoError(t, os.Remove(p))
	require.NoError(t, os.Mkdir(p, 0o755))
	l.Reload()
	assert.True(t, l.Check(netip.MustParseAddr("192.0.2.1")).Threat, "previous list kept on a read error")
	st := l.Status()
	require.Len(t, st, 1)
	assert.NotEmpty(t, st[0].Error)
}
