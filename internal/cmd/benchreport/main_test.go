package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const sample = `goos: linux
pkg: github.com/meshsession/meshsession/plugin/filter
BenchmarkLifecycleEnforced/revocations=1000-2         	  300000	      4012 ns/op	         5.500 MiB-memory-end	     3900 cpu-ns/op	     770 B/op	       7 allocs/op
BenchmarkLifecycleEnforced/revocations=1000-2         	  300000	      4105 ns/op	         5.500 MiB-memory-end	     3950 cpu-ns/op	     770 B/op	       7 allocs/op
BenchmarkLifecycleEnforced/revocations=100000-2       	  300000	      5230 ns/op	        11.25 MiB-memory-end	     5100 cpu-ns/op	     770 B/op	       7 allocs/op
BenchmarkDecideNone/revocations=1000 	     100	       999.1 ns/op	         0 cpu-ns/op	       0 B/op	       0 allocs/op
--- BENCH: BenchmarkSomething
    bench_test.go:10: a log line
Benchmark results follow
PASS
`

func TestParse(t *testing.T) {
	res, err := parse(strings.NewReader(sample))
	require.NoError(t, err)
	assert.Equal(t, []float64{4012, 4105}, res["BenchmarkLifecycleEnforced/revocations=1000"]["ns/op"])
	assert.Equal(t, []float64{11.25}, res["BenchmarkLifecycleEnforced/revocations=100000"]["MiB-memory-end"])
	assert.Equal(t, []float64{999.1}, res["BenchmarkDecideNone/revocations=1000"]["ns/op"], "no -GOMAXPROCS suffix (wasip1)")
	assert.Len(t, res, 3, "log and header lines are skipped")

	_, err = parse(strings.NewReader("BenchmarkX-2 10 abc ns/op\n"))
	assert.Error(t, err, "a malformed value is an error, not a silent gap")
}

func TestWrite(t *testing.T) {
	res, err := parse(strings.NewReader(sample))
	require.NoError(t, err)
	var out bytes.Buffer
	require.NoError(t, write(&out, "cores (nproc): 2\nCPU: test", map[string]results{"lifecycle": res}))
	got := out.String()
	assert.Contains(t, got, "- cores (nproc): 2\n- CPU: test\n")
	assert.Contains(t, got, "| 4.01–4.11 µs (2 runs) | ≤ 5.00 µs: met |", "1k: spread and target")
	assert.Contains(t, got, "| 5.23 µs (1 runs) | ≤ 5.00 µs: **not met** |", "100k: over the target")
	assert.Contains(t, got, "| 11.2 MiB (1 runs) | ≤ 16.0 MiB: met |")
	assert.Contains(t, got, "| request without a token | not run |  |", "a figure without results says so")
	assert.Contains(t, got, "figures were not run")
	for src := range commands {
		assert.Contains(t, got, "- "+src+": `", "every command is listed")
	}
}

// TestEveryFigureHasACommand: a figure names a source that is run.
func TestEveryFigureHasACommand(t *testing.T) {
	for _, f := range figures {
		assert.Contains(t, commands, f.source, f.what)
		assert.NotEmpty(t, f.benches, f.what)
		assert.NotZero(t, f.scale, f.what)
	}
}
