// Package filter is the thin proxy-wasm SDK layer of the meshsession filter:
// the VM, plugin (root) and HTTP contexts. Decisions live in plugin/core.
package filter

import (
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/meshsession/meshsession/plugin/core/config"
)

// NewVMContext returns the filter's VM context.
func NewVMContext() types.VMContext { return &vmContext{} }

type vmContext struct {
	types.DefaultVMContext
}

func (*vmContext) NewPluginContext(contextID uint32) types.PluginContext {
	return &pluginContext{}
}

type pluginContext struct {
	types.DefaultPluginContext
	cfg *config.Config
}

func (p *pluginContext) OnPluginStart(size int) types.OnPluginStartStatus {
	var data []byte
	if size > 0 {
		var err error
		data, err = proxywasm.GetPluginConfiguration()
		if err != nil {
			proxywasm.LogCriticalf("meshsession: read plugin configuration: %v", err)
			return types.OnPluginStartStatusFailed
		}
	}
	cfg, err := config.Parse(data)
	if err != nil {
		proxywasm.LogCriticalf("meshsession: invalid plugin configuration: %v", err)
		return types.OnPluginStartStatusFailed
	}
	p.cfg = cfg
	proxywasm.LogInfof("meshsession: filter started (cluster %q)", cfg.Cluster)
	return types.OnPluginStartStatusOK
}

func (p *pluginContext) NewHttpContext(contextID uint32) types.HttpContext {
	return &httpContext{plugin: p}
}

type httpContext struct {
	types.DefaultHttpContext
	plugin *pluginContext
}

func (h *httpContext) OnHttpRequestHeaders(numHeaders int, endOfStream bool) types.Action {
	ih := h.plugin.cfg.IdentityHeaders
	for _, name := range []string{ih.SessionID, ih.UserID} {
		if name != "" {
			_ = proxywasm.RemoveHttpRequestHeader(name)
		}
	}
	return types.ActionContinue
}
