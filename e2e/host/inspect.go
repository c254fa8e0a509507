package host

import (
	"context"
	"fmt"
	"sort"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// Import is one function a module imports.
type Import struct {
	Module, Name string
	Params       []api.ValueType
	Results      []api.ValueType
}

func (i Import) String() string { return i.Module + "." + i.Name }

// Inspect lists a module's function imports (sorted by module, name) and its
// exports (functions and memories, sorted), without instantiating it.
func Inspect(ctx context.Context, module []byte) (imports []Import, exports []string, err error) {
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	defer rt.Close(ctx)
	c, err := rt.CompileModule(ctx, module)
	if err != nil {
		return nil, nil, fmt.Errorf("inspect wasm module: %w", err)
	}
	for _, f := range c.ImportedFunctions() {
		mod, name, _ := f.Import()
		imports = append(imports, Import{Module: mod, Name: name,
			Params: f.ParamTypes(), Results: f.ResultTypes()})
	}
	sort.Slice(imports, func(a, b int) bool {
		if imports[a].Module != imports[b].Module {
			return imports[a].Module < imports[b].Module
		}
		return imports[a].Name < imports[b].Name
	})
	for name := range c.ExportedFunctions() {
		exports = append(exports, name)
	}
	for name := range c.ExportedMemories() {
		exports = append(exports, name)
	}
	sort.Strings(exports)
	return imports, exports, nil
}
