// Command plugin is the meshsession proxy-wasm filter. Build it with
// `make plugin` (GOOS=wasip1 GOARCH=wasm, -buildmode=c-shared; see
// plugin/cmd/wasmbuild): the result, plugin.wasm, is what Envoy loads.
package main

import (
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"

	"github.com/meshsession/meshsession/plugin/filter"
)

// init runs in _initialize. Envoy allows only a few host calls there, so it
// only registers the VM context (the one piece of global state the SDK forces).
func init() {
	proxywasm.SetVMContext(filter.NewVMContext())
}

// main is required by the c-shared build mode and never called by Envoy.
func main() {}
