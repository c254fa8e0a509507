// Command benchreport turns `go test -bench -count N` outputs into the
// markdown table README.md's "Speed and memory" section quotes: for each
// figure, the benchmark and metric it comes from, the spread (min–max) of
// the runs, and whether its target is met on every run, under a header
// naming the machine. `make bench-report` runs the benchmarks and this.
//
//	benchreport -o report.md native=decide.txt wasm=decide-wasm.txt filter=filter.txt
//
// Each argument is source=file: the figures name their source, so that the
// same benchmark run natively and on Wasm stay apart.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// figure is one row of the README's table.
type figure struct {
	what    string
	source  string
	benches []string // benchmark names without the -GOMAXPROCS suffix; the row spans them all
	metric  string   // as go test prints it: ns/op, allocs/op, or a ReportMetric unit
	scale   float64  // value * scale is shown
	unit    string
	target  float64 // the shown value must stay <= target; 0: none
}

// command is how each source is produced (shown in the report).
var commands = map[string]string{
	"decide":      "go test -run '^$' -bench 'BenchmarkDecide(None|NoneUncached|HS256Uncached)$' -benchmem ./plugin/core/decide",
	"decide-wasm": "GOOS=wasip1 GOARCH=wasm go test -exec .build/wasirun -run '^$' -bench 'BenchmarkDecideNone$' -benchmem ./plugin/core/decide",
	"lifecycle":   "MESHSESSION_PLUGIN_WASM=$PWD/plugin.wasm go test -run '^$' -bench 'BenchmarkLifecycle' -benchmem ./plugin/filter",
	"snapshot":    "MESHSESSION_PLUGIN_WASM=$PWD/plugin.wasm go test -run '^$' -bench 'BenchmarkSnapshot' -benchtime 1x ./plugin/filter",
}

var figures = []figure{
	{what: "whole enforced request on `plugin.wasm` (context create, HS256 token checked, identity headers set, throttle, response, log, delete), 1,000 revocations",
		source: "lifecycle", benches: []string{"BenchmarkLifecycleEnforced/revocations=1000"}, metric: "ns/op", scale: 1e-3, unit: "µs", target: 5},
	{what: "the same with 100,000 revocations",
		source: "lifecycle", benches: []string{"BenchmarkLifecycleEnforced/revocations=100000"}, metric: "ns/op", scale: 1e-3, unit: "µs", target: 5},
	{what: "the same with a browser's 16 request headers (100,000 revocations)",
		source: "lifecycle", benches: []string{"BenchmarkLifecycleBrowser"}, metric: "ns/op", scale: 1e-3, unit: "µs"},
	{what: "request without a token",
		source: "lifecycle", benches: []string{"BenchmarkLifecycleNoToken"}, metric: "ns/op", scale: 1e-3, unit: "µs"},
	{what: "the ABI calls alone (context create, response headers, log, done, delete)",
		source: "lifecycle", benches: []string{"BenchmarkLifecycleABIOnly"}, metric: "ns/op", scale: 1e-3, unit: "µs"},
	{what: "decision in the native core, known token, 1k–100k revocations",
		source: "decide", benches: []string{"BenchmarkDecideNone/revocations=1000", "BenchmarkDecideNone/revocations=10000", "BenchmarkDecideNone/revocations=100000"},
		metric: "ns/op", scale: 1, unit: "ns", target: 1000},
	{what: "the same: allocations",
		source: "decide", benches: []string{"BenchmarkDecideNone/revocations=1000", "BenchmarkDecideNone/revocations=10000", "BenchmarkDecideNone/revocations=100000"},
		metric: "allocs/op", scale: 1, unit: "allocs"},
	{what: "the same in Wasm (the core's test binary on wazero)",
		source: "decide-wasm", benches: []string{"BenchmarkDecideNone/revocations=1000", "BenchmarkDecideNone/revocations=10000", "BenchmarkDecideNone/revocations=100000"},
		metric: "ns/op", scale: 1e-3, unit: "µs", target: 1},
	{what: "decision for a token seen the first time (decode, fingerprint)",
		source: "decide", benches: []string{"BenchmarkDecideNoneUncached/revocations=1000", "BenchmarkDecideNoneUncached/revocations=10000", "BenchmarkDecideNoneUncached/revocations=100000"},
		metric: "ns/op", scale: 1e-3, unit: "µs"},
	{what: "the same with the HS256 check",
		source: "decide", benches: []string{"BenchmarkDecideHS256Uncached/revocations=100000"}, metric: "ns/op", scale: 1e-3, unit: "µs"},
	{what: "snapshot applied in the VM, binary feed, 1k entries",
		source: "snapshot", benches: []string{"BenchmarkSnapshot/n=1000/page=5000"}, metric: "apply-ms", scale: 1, unit: "ms"},
	{what: "the same, 10k entries",
		source: "snapshot", benches: []string{"BenchmarkSnapshot/n=10000/page=5000"}, metric: "apply-ms", scale: 1, unit: "ms"},
	{what: "the same, 100k entries",
		source: "snapshot", benches: []string{"BenchmarkSnapshot/n=100000/page=5000"}, metric: "apply-ms", scale: 1, unit: "ms", target: 100},
	{what: "VM memory holding 100,000 revocations, after the snapshot",
		source: "snapshot", benches: []string{"BenchmarkSnapshot/n=100000/page=5000"}, metric: "MiB-memory", scale: 1, unit: "MiB", target: 16},
	{what: "the same after the requests of the 100k lifecycle benchmark",
		source: "lifecycle", benches: []string{"BenchmarkLifecycleEnforced/revocations=100000"}, metric: "MiB-memory-end", scale: 1, unit: "MiB", target: 16},
	{what: "another worker adopting the published 100k state",
		source: "snapshot", benches: []string{"BenchmarkSnapshot/n=100000/page=5000"}, metric: "adopt-ms", scale: 1, unit: "ms"},
	{what: "another worker applying a delta page",
		source: "snapshot", benches: []string{"BenchmarkSnapshot/n=100000/page=5000"}, metric: "adopt-delta-ms", scale: 1, unit: "ms"},
}

func main() {
	out := flag.String("o", "", "output file (default stdout)")
	machine := flag.String("machine", "", "file of `key: value` lines describing the machine, copied into the header")
	flag.Parse()
	results := map[string]results{}
	for _, arg := range flag.Args() {
		src, file, ok := strings.Cut(arg, "=")
		if !ok {
			fatalf("argument %q: want source=file", arg)
		}
		f, err := os.Open(file)
		if err != nil {
			fatalf("%v", err)
		}
		results[src], err = parse(f)
		f.Close()
		if err != nil {
			fatalf("%s: %v", file, err)
		}
	}
	var info []byte
	if *machine != "" {
		var err error
		if info, err = os.ReadFile(*machine); err != nil {
			fatalf("%v", err)
		}
	}
	w := io.Writer(os.Stdout)
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			fatalf("%v", err)
		}
		defer f.Close()
		w = f
	}
	if err := write(w, string(info), results); err != nil {
		fatalf("%v", err)
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "benchreport: "+format+"\n", args...)
	os.Exit(1)
}

// results maps benchmark name -> metric -> one value per run.
type results map[string]map[string][]float64

var procSuffix = regexp.MustCompile(`-\d+$`)

// parse reads `go test -bench` output: "BenchmarkX/sub-2  N  v unit  v unit ...".
func parse(r io.Reader) (results, error) {
	res := results{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") || len(f)%2 != 0 {
			continue
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue
		}
		name := procSuffix.ReplaceAllString(f[0], "")
		if res[name] == nil {
			res[name] = map[string][]float64{}
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return nil, fmt.Errorf("%q: value %q: %w", sc.Text(), f[i], err)
			}
			res[name][f[i+1]] = append(res[name][f[i+1]], v)
		}
	}
	return res, sc.Err()
}

// spread is the min and max of a figure over every run of its benchmarks.
func spread(fig figure, all map[string]results) (lo, hi float64, runs int, ok bool) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, b := range fig.benches {
		for _, v := range all[fig.source][b][fig.metric] {
			v *= fig.scale
			lo, hi = math.Min(lo, v), math.Max(hi, v)
			runs++
		}
	}
	return lo, hi, runs, runs > 0
}

func format(v float64) string {
	switch a := math.Abs(v); {
	case a == 0:
		return "0"
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}

func write(w io.Writer, machine string, all map[string]results) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, "# Benchmark report")
	fmt.Fprintln(bw)
	for _, l := range strings.Split(strings.TrimSpace(machine), "\n") {
		if l != "" {
			fmt.Fprintf(bw, "- %s\n", l)
		}
	}
	fmt.Fprintln(bw)
	fmt.Fprintln(bw, "| what | measured (min–max of the runs) | target | benchmark (metric) |")
	fmt.Fprintln(bw, "|---|---|---|---|")
	missing := 0
	for _, fig := range figures {
		measured, target := "not run", ""
		if lo, hi, runs, ok := spread(fig, all); ok {
			measured = format(lo) + " " + fig.unit
			if format(lo) != format(hi) {
				measured = format(lo) + "–" + format(hi) + " " + fig.unit
			}
			measured += fmt.Sprintf(" (%d runs)", runs)
			if fig.target > 0 {
				verdict := "met"
				if hi > fig.target {
					verdict = "**not met**"
				}
				target = fmt.Sprintf("≤ %s %s: %s", format(fig.target), fig.unit, verdict)
			}
		} else {
			missing++
		}
		if fig.target > 0 && target == "" {
			target = fmt.Sprintf("≤ %s %s", format(fig.target), fig.unit)
		}
		fmt.Fprintf(bw, "| %s | %s | %s | `%s` (%s) |\n", fig.what, measured, target, strings.Join(fig.benches, "`, `"), fig.metric)
	}
	fmt.Fprintln(bw)
	fmt.Fprintln(bw, "Commands (each with -count; `make bench-report` runs them all):")
	fmt.Fprintln(bw)
	var srcs []string
	for s := range commands {
		srcs = append(srcs, s)
	}
	sort.Strings(srcs)
	for _, s := range srcs {
		fmt.Fprintf(bw, "- %s: `%s`\n", s, commands[s])
	}
	if missing > 0 {
		fmt.Fprintf(bw, "\n%d figures were not run (a source missing, or a benchmark skipped).\n", missing)
	}
	return bw.Flush()
}
