package filter_test

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"

	"github.com/meshsession/meshsession/e2e/host"
	"github.com/meshsession/meshsession/plugin/protocol"
)

type countingFactory struct{ counts map[string]int }

type countingListener struct {
	name   string
	counts map[string]int
}

func (f *countingFactory) NewFunctionListener(def api.FunctionDefinition) experimental.FunctionListener {
	name := def.DebugName()
	if def.GoFunction() != nil {
		name = "import:" + def.DebugName()
	} else if len(def.ExportNames()) > 0 {
		name = "export:" + def.ExportNames()[0]
	}
	return &countingListener{name: name, counts: f.counts}
}

func (l *countingListener) Before(_ context.Context, _ api.Module, _ api.FunctionDefinition, _ []uint64, si experimental.StackIterator) {
	l.counts[l.name]++
	if l.name == ".runtime.mallocgc" {
		var chain []string
		for i := 0; si.Next() && i < 5; i++ {
			chain = append(chain, si.Function().Definition().DebugName())
		}
		l.counts["alloc-from:"+strings.Join(chain, " < ")]++
	}
}
func (l *countingListener) After(context.Context, api.Module, api.FunctionDefinition, []uint64) {}
func (l *countingListener) Abort(context.Context, api.Module, api.FunctionDefinition, error)    {}

// TestCallCount (MESHSESSION_CALLCOUNT=path/to/unstripped.wasm) prints the
// calls per enforced request: host imports, guest exports, guest functions
// (all of them with MESHSESSION_CALLCOUNT_ALL=1), against
// MESHSESSION_CALLCOUNT_REVOCATIONS revocations (1,000).
func TestCallCount(t *testing.T) {
	path := os.Getenv("MESHSESSION_CALLCOUNT")
	if path == "" {
		t.Skip("MESHSESSION_CALLCOUNT not set")
	}
	module, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f := &countingFactory{counts: map[string]int{}}
	ctx := experimental.WithFunctionListenerFactory(context.Background(), f)
	stub := &stubSvc{epoch: "bench", calls: map[string]int{}}
	exp := time.Now().Add(time.Hour).Unix()
	revocations := 1000
	if v, err := strconv.Atoi(os.Getenv("MESHSESSION_CALLCOUNT_REVOCATIONS")); err == nil {
		revocations = v
	}
	for i := 0; i < revocations; i++ {
		stub.log = append(stub.log, protocol.Change{Seq: int64(i + 1), Op: protocol.OpRevoke,
			Key: "sid:revoked-" + strconv.Itoa(i), Exp: exp, Reason: protocol.ReasonManual})
	}
	srv := newStubServer(stub)
	defer srv.Close()
	h, err := host.New(ctx, host.Config{
		Module: module, Workers: 1, VMID: "meshsession", RootID: "meshsession",
		PluginConfig: []byte(testConfig(`"timeout":"30s","last_seen_interval":"1h"`)),
		Clusters:     map[string]host.Cluster{"sessionsvc": {URL: srv.URL, Timeout: 30 * time.Second}}, DisableTicks: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(context.Background())
	if err := h.Tick(0); err != nil {
		t.Fatal(err)
	}
	for h.PendingCallouts() > 0 {
		time.Sleep(time.Millisecond)
	}
	tok := "Bearer " + userToken(42, "live-session")
	if os.Getenv("MESHSESSION_CALLCOUNT_NOTOKEN") != "" {
		tok = ""
	}
	run := func(n int) {
		req := [][2]string{{":method", "GET"}, {":path", "/api/articles"}, {":authority", "app"}}
		if tok != "" {
			req = append(req, [2]string{"authorization", tok})
		}
		resp := [][2]string{{":status", "200"}, {"content-type", "application/json"}}
		for i := 0; i < n; i++ {
			s, _ := h.NewStream(0)
			s.RequestHeaders(req, true)
			s.ResponseHeaders(resp, true)
			s.Finish()
		}
	}
	run(100) // warm (first request reports activity)
	for k := range f.counts {
		delete(f.counts, k)
	}
	const n = 1000
	run(n)
	type kv struct {
		k string
		v int
	}
	var all []kv
	var imports, guest int
	for k, v := range f.counts {
		all = append(all, kv{k, v})
		if strings.HasPrefix(k, "import:") {
			imports += v
		} else {
			guest += v
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].v > all[j].v })
	var b strings.Builder
	fmt.Fprintf(&b, "per request: %.2f host calls, %.2f guest function calls\n", float64(imports)/n, float64(guest)/n)
	for _, e := range all {
		if strings.HasPrefix(e.k, "import:") || strings.HasPrefix(e.k, "export:") || strings.HasPrefix(e.k, "alloc-from:") || os.Getenv("MESHSESSION_CALLCOUNT_ALL") != "" && e.v >= n/10 {
			fmt.Fprintf(&b, "%8.2f %s\n", float64(e.v)/n, e.k)
		}
	}
	t.Log(b.String())
}
