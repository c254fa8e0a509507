package host_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/e2e/host"
)

func TestSharedDataCASRules(t *testing.T) {
	s := host.NewProcess().SharedData("vm")

	_, _, st := s.Get("k")
	assert.Equal(t, host.StatusNotFound, st, "missing key")

	require.Equal(t, host.StatusOK, s.Set("k", []byte("v1"), 0))
	v, cas1, st := s.Get("k")
	require.Equal(t, host.StatusOK, st)
	assert.Equal(t, "v1", string(v))
	assert.NotZero(t, cas1)

	require.Equal(t, host.StatusOK, s.Set("k", []byte("v2"), cas1), "current cas")
	_, cas2, _ := s.Get("k")
	assert.NotEqual(t, cas1, cas2, "every write assigns a new cas")

	assert.Equal(t, host.StatusCasMismatch, s.Set("k", []byte("v3"), cas1), "stale cas")
	v, _, _ = s.Get("k")
	assert.Equal(t, "v2", string(v), "a mismatch writes nothing")

	assert.Equal(t, host.StatusOK, s.Set("k", []byte("v4"), 0), "cas 0 writes unconditionally")
	v, _, _ = s.Get("k")
	assert.Equal(t, "v4", string(v))

	assert.Equal(t, host.StatusOK, s.Set("new", []byte("x"), 987654), "a new key ignores the cas")

	require.Equal(t, host.StatusOK, s.Set("empty", nil, 0))
	v, _, st = s.Get("empty")
	assert.Equal(t, host.StatusOK, st, "no delete: an empty value is present")
	assert.Empty(t, v)
	assert.Equal(t, []string{"empty", "k", "new"}, s.Keys())
}

func TestSharedDataCopiesValues(t *testing.T) {
	s := host.NewProcess().SharedData("vm")
	in := []byte("abc")
	require.Equal(t, host.StatusOK, s.Set("k", in, 0))
	in[0] = 'X'
	out, _, _ := s.Get("k")
	assert.Equal(t, "abc", string(out))
	out[1] = 'Y'
	again, _, _ := s.Get("k")
	assert.Equal(t, "abc", string(again))
}

func TestSharedDataPerVMIDAndGlobalCAS(t *testing.T) {
	p := host.NewProcess()
	a, b := p.SharedData("a"), p.SharedData("b")
	require.Equal(t, host.StatusOK, a.Set("k", []byte("1"), 0))
	_, _, st := b.Get("k")
	assert.Equal(t, host.StatusNotFound, st, "stores are per vm_id")
	require.Equal(t, host.StatusOK, b.Set("k", []byte("2"), 0))
	_, casA, _ := a.Get("k")
	_, casB, _ := b.Get("k")
	assert.NotEqual(t, casA, casB, "the cas counter is process-wide")
	assert.Same(t, a, p.SharedData("a"))
}
