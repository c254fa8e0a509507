package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCheckSDK(t *testing.T) {
	for _, tc := range []struct {
		listed string
		want   []string // substrings of the error; nil: accepted
	}{
		{listed: "v0.24.0|"},
		{listed: "v0.24.0|\n"},
		{listed: "v0.25.0|", want: []string{"requires " + sdkModule + " v0.25.0", "written against v0.24.0", "go get " + sdkModule + "@v0.24.0"}},
		{listed: "v0.23.0|", want: []string{"v0.23.0"}},
		{listed: "v0.24.1-0.20250101000000-abcdef123456|", want: []string{"v0.24.1-0.20250101000000-abcdef123456"}},
		{listed: "|", want: []string{"requires " + sdkModule + " ,"}},
		{listed: "v0.24.0|../sdk-fork ", want: []string{"replaces", "../sdk-fork", "remove the replace directive"}},
		{listed: "v0.24.0|example.com/fork v0.24.0", want: []string{"example.com/fork v0.24.0"}},
	} {
		err := checkSDK(tc.listed)
		if tc.want == nil {
			assert.NoError(t, err, "%q", tc.listed)
			continue
		}
		require.Error(t, err, "%q", tc.listed)
		for _, w := range tc.want {
			assert.Contains(t, err.Error(), w, "%q", tc.listed)
		}
	}
}

// TestGoModPinsTheSDK: the module's own go.mod passes the check wasmbuild makes.
func TestGoModPinsTheSDK(t *testing.T) {
	out, err := goOutput(t.Context(), ".", nil, "list", "-m", "-f", sdkListFormat, sdkModule)
	require.NoError(t, err)
	assert.NoError(t, checkSDK(out))
}
