package host

import (
	"context"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	wasi "github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// errnoNOSYS is WASI's ENOSYS.
const errnoNOSYS = 52

// instantiateWASI provides wasi_snapshot_preview1 from wazero's
// implementation; with pollENOSYS, poll_oneoff is replaced by a function
// answering ENOSYS, as Envoy hosts before PR #45756 do.
func instantiateWASI(ctx context.Context, rt wazero.Runtime, pollENOSYS bool) error {
	b := rt.NewHostModuleBuilder(wasi.ModuleName)
	wasi.NewFunctionExporter().ExportFunctions(b)
	if pollENOSYS {
		i32 := api.ValueTypeI32
		b.NewFunctionBuilder().
			WithGoModuleFunction(api.GoModuleFunc(func(_ context.Context, _ api.Module, stack []uint64) {
				stack[0] = errnoNOSYS
			}), []api.ValueType{i32, i32, i32, i32}, []api.ValueType{i32}).
			WithParameterNames("in", "out", "nsubscriptions", "result.nevents").
			Export("poll_oneoff")
	}
	_, err := b.Instantiate(ctx)
	return err
}
