package wasmpatch

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
	wabinary "github.com/tetratelabs/wabin/binary"
	"github.com/tetratelabs/wabin/wasm"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// testModule imports fd_write, poll_oneoff and path_filestat_get (in that
// order) and defines:
//
//	f3 "poll"(nevents) -> i32: calls poll_oneoff(0, 0, 1, nevents)
//	f4 "stat"() -> i32: calls path_filestat_get(0,0,0,0,0)
//	f5 "viaTable"(nevents) -> i32: call_indirect through table slot 0 (= f3)
//	f6 "helper"() -> i32: returns 7; called by f7 to check index shifts
//	f7 "callHelper"() -> i32
func testModule(t *testing.T) []byte {
	t.Helper()
	i32 := wasm.ValueTypeI32
	zero := wasm.Index(0)
	f3 := wasm.Index(3)
	m := &wasm.Module{
		TypeSection: []*wasm.FunctionType{
			{Params: []wasm.ValueType{i32, i32, i32, i32}, Results: []wasm.ValueType{i32}},      // 0 fd_write/poll_oneoff
			{Params: []wasm.ValueType{i32, i32, i32, i32, i32}, Results: []wasm.ValueType{i32}}, // 1 path_filestat_get
			{Params: []wasm.ValueType{i32}, Results: []wasm.ValueType{i32}},                     // 2
			{Results: []wasm.ValueType{i32}},                                                    // 3
		},
		ImportSection: []*wasm.Import{
			{Module: "wasi_snapshot_preview1", Name: "fd_write", Type: wasm.ExternTypeFunc, DescFunc: 0},
			{Module: "wasi_snapshot_preview1", Name: "poll_oneoff", Type: wasm.ExternTypeFunc, DescFunc: 0},
			{Module: "wasi_snapshot_preview1", Name: "path_filestat_get", Type: wasm.ExternTypeFunc, DescFunc: 1},
		},
		FunctionSection: []wasm.Index{2, 3, 2, 3, 3},
		CodeSection: []*wasm.Code{
			{Body: []byte{
				wasm.OpcodeI32Const, 0, wasm.OpcodeI32Const, 0, wasm.OpcodeI32Const, 1,
				wasm.OpcodeLocalGet, 0,
				wasm.OpcodeCall, 1,
				wasm.OpcodeEnd,
			}},
			{Body: []byte{
				wasm.OpcodeI32Const, 0, wasm.OpcodeI32Const, 0, wasm.OpcodeI32Const, 0, wasm.OpcodeI32Const, 0, wasm.OpcodeI32Const, 0,
				wasm.OpcodeCall, 2,
				wasm.OpcodeEnd,
			}},
			{Body: []byte{
				wasm.OpcodeLocalGet, 0, wasm.OpcodeI32Const, 0,
				wasm.OpcodeCallIndirect, 2, 0,
				wasm.OpcodeEnd,
			}},
			{Body: []byte{wasm.OpcodeBlock, 0x7f, wasm.OpcodeI32Const, 7, wasm.OpcodeEnd, wasm.OpcodeEnd}},
			{Body: []byte{wasm.OpcodeCall, 6, wasm.OpcodeEnd}},
		},
		TableSection:  []*wasm.Table{{Min: 1, Type: wasm.RefTypeFuncref}},
		MemorySection: &wasm.Memory{Min: 1, Max: 1, IsMaxEncoded: true},
		ElementSection: []*wasm.ElementSegment{{
			OffsetExpr: &wasm.ConstantExpression{Opcode: wasm.OpcodeI32Const, Data: []byte{0}},
			Init:       []*wasm.Index{&f3},
			Type:       wasm.RefTypeFuncref,
			Mode:       wasm.ElementModeActive,
			TableIndex: zero,
		}},
		ExportSection: []*wasm.Export{
			{Name: "poll", Type: wasm.ExternTypeFunc, Index: 3},
			{Name: "stat", Type: wasm.ExternTypeFunc, Index: 4},
			{Name: "viaTable", Type: wasm.ExternTypeFunc, Index: 5},
			{Name: "callHelper", Type: wasm.ExternTypeFunc, Index: 7},
			{Name: "memory", Type: wasm.ExternTypeMemory, Index: 0},
		},
	}
	return wabinary.EncodeModule(m)
}

// hostWASI provides only fd_write (and, when pollErrno >= 0, a poll_oneoff
// answering that errno).
func instantiate(t *testing.T, module []byte, pollErrno int) api.Module {
	t.Helper()
	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	t.Cleanup(func() { r.Close(ctx) })
	b := r.NewHostModuleBuilder("wasi_snapshot_preview1").
		NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, m api.Module, stack []uint64) {
		stack[0] = 0
	}), []api.ValueType{api.ValueTypeI32, api.ValueTypeI32, api.ValueTypeI32, api.ValueTypeI32}, []api.ValueType{api.ValueTypeI32}).Export("fd_write")
	if pollErrno >= 0 {
		b = b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, m api.Module, stack []uint64) {
			stack[0] = uint64(pollErrno)
		}), []api.ValueType{api.ValueTypeI32, api.ValueTypeI32, api.ValueTypeI32, api.ValueTypeI32}, []api.ValueType{api.ValueTypeI32}).Export("poll_oneoff")
	}
	_, err := b.Instantiate(ctx)
	require.NoError(t, err)
	mod, err := r.Instantiate(ctx, module)
	require.NoError(t, err)
	return mod
}

func call(t *testing.T, mod api.Module, name string, args ...uint64) uint32 {
	t.Helper()
	res, err := mod.ExportedFunction(name).Call(context.Background(), args...)
	require.NoError(t, err)
	return uint32(res[0])
}

func TestRewriteReplacesPollOneoffAndStubsMissingWASI(t *testing.T) {
	orig := testModule(t)

	out, rep, err := Rewrite(orig)
	require.NoError(t, err)
	require.True(t, rep.PollOneoff)
	require.Equal(t, []string{"path_filestat_get"}, rep.Stubbed)

	imports, exports, err := FuncNames(out)
	require.NoError(t, err)
	require.Equal(t, []string{"wasi_snapshot_preview1.fd_write"}, imports)
	require.ElementsMatch(t, []string{"poll", "stat", "viaTable", "callHelper"}, exports)

	// The rewritten module needs no poll_oneoff from the host.
	mod := instantiate(t, out, -1)
	const nevents = 64
	require.True(t, mod.Memory().WriteUint32Le(nevents, 0xdeadbeef))
	require.Equal(t, uint32(0), call(t, mod, "poll", nevents), "poll_oneoff answers success")
	v, ok := mod.Memory().ReadUint32Le(nevents)
	require.True(t, ok)
	require.Equal(t, uint32(0), v, "and zero events")

	require.True(t, mod.Memory().WriteUint32Le(nevents, 9))
	require.Equal(t, uint32(0), call(t, mod, "viaTable", nevents), "table entries follow the shifted indices")
	v, _ = mod.Memory().ReadUint32Le(nevents)
	require.Equal(t, uint32(0), v)

	require.Equal(t, uint32(ENOSYS), call(t, mod, "stat"))
	require.Equal(t, uint32(7), call(t, mod, "callHelper"), "calls past the removed import are shifted")
}

func TestOriginalIsRefusedByAHostLackingImports(t *testing.T) {
	// Like Envoy ("missing import"), a host that lacks path_filestat_get
	// refuses the module as the Go toolchain built it.
	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	defer r.Close(ctx)
	_, err := r.Instantiate(ctx, testModule(t))
	require.ErrorContains(t, err, "wasi_snapshot_preview1")
}

func TestRewriteErrors(t *testing.T) {
	_, _, err := Rewrite([]byte("not wasm"))
	require.ErrorContains(t, err, "decode module")

	empty := wabinary.EncodeModule(&wasm.Module{})
	_, _, err = Rewrite(empty)
	require.True(t, errors.Is(err, ErrNoImport), "a module without poll_oneoff is not a Go module: %v", err)
}

func TestRemapBodyRefusesUnknownOpcodes(t *testing.T) {
	_, err := remapBody([]byte{0xfd, 0x00, wasm.OpcodeEnd}, func(i uint32) (uint32, error) { return i, nil })
	require.ErrorContains(t, err, "unsupported opcode 0xfd")
	_, err = remapBody([]byte{wasm.OpcodeCall}, func(i uint32) (uint32, error) { return i, nil })
	require.ErrorContains(t, err, "function index")
}

func TestRemapBodyRewritesWideImmediates(t *testing.T) {
	// The Go linker pads call immediates to 5 bytes; the rewrite may shorten them.
	body := []byte{wasm.OpcodeCall, 0x85, 0x80, 0x80, 0x80, 0x00, wasm.OpcodeI64Const, 0x7f, wasm.OpcodeF64Const, 1, 2, 3, 4, 5, 6, 7, 8, wasm.OpcodeEnd}
	out, err := remapBody(body, func(i uint32) (uint32, error) { return i - 1, nil })
	require.NoError(t, err)
	require.Equal(t, []byte{wasm.OpcodeCall, 4, wasm.OpcodeI64Const, 0x7f, wasm.OpcodeF64Const, 1, 2, 3, 4, 5, 6, 7, 8, wasm.OpcodeEnd}, out)
}
