//go:build wasip1 && !tinygo

// A direct-mapped table of live HTTP contexts in front of the SDK's maps.
//
// The SDK keeps every HTTP context in two Go maps (httpContexts and
// contextIDToRootID) and looks it up on every callback: per request, about
// ten lookups, two inserts and two deletes, which cost over a microsecond in
// Wasm. Here an HTTP context lives in a slot chosen by its id instead; the
// exports below find it there and call it as the SDK would (setting the
// active context first). The SDK's maps remain the fallback: a context whose
// slot is taken (a long-lived stream) is created and served by the SDK's own
// code, as are root and TCP contexts.
//
// contextIDToRootID matters beyond lookups: registerHttpCallOut finds the
// root of the context dispatching a callout there, and
// proxyOnHttpCallResponse runs a callout's callback only if its context is
// still in it. So ProxyHttpCall (hostcalls) binds the active table context
// into contextIDToRootID before the SDK registers the callout, and
// proxy_on_delete unbinds it.

package internal

import "github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"

const httpTableSize = 256 // a power of two

type httpSlot struct {
	id    uint32
	root  uint32
	bound bool // present in currentState.contextIDToRootID
	ctx   types.HttpContext
}

var httpTable [httpTableSize]httpSlot

// lastRoot caches the last root context HTTP contexts were created under.
var lastRoot struct {
	id    uint32
	state *pluginContextState
}

// httpContextDeleted, if set, is told about every HTTP context after
// proxy_on_delete, once the SDK no longer references it.
var httpContextDeleted func(types.HttpContext)

// SetHttpContextDeleteHook sets the function told about deleted HTTP contexts.
func SetHttpContextDeleteHook(fn func(types.HttpContext)) { httpContextDeleted = fn }

// tableHTTP is the table's context of id, or nil.
func tableHTTP(id uint32) types.HttpContext {
	s := &httpTable[id&(httpTableSize-1)]
	if s.ctx != nil && s.id == id {
		return s.ctx
	}
	return nil
}

// activeHTTP makes id the active context and returns it if it is in the table.
func activeHTTP(id uint32) types.HttpContext {
	ctx := tableHTTP(id)
	if ctx != nil {
		currentState.setActiveContextID(id)
	}
	return ctx
}

// createContext creates an HTTP context in the table when it can, else
// leaves it to the SDK.
func createContext(contextID, parentID uint32) {
	s := &httpTable[contextID&(httpTableSize-1)]
	if parentID != 0 && s.ctx == nil {
		root := lastRoot.state
		if root == nil || lastRoot.id != parentID {
			root = currentState.pluginContexts[parentID]
			lastRoot.id, lastRoot.state = parentID, root
		}
		if root != nil {
			if ctx := root.context.NewHttpContext(contextID); ctx != nil {
				*s = httpSlot{id: contextID, root: parentID, ctx: ctx}
				return
			}
		}
	}
	proxyOnContextCreate(contextID, parentID)
}

// deleteContext forgets a context (the table's or the SDK's).
func deleteContext(contextID uint32) {
	s := &httpTable[contextID&(httpTableSize-1)]
	if s.ctx != nil && s.id == contextID {
		ctx := s.ctx
		if s.bound {
			delete(currentState.contextIDToRootID, contextID)
		}
		*s = httpSlot{}
		if httpContextDeleted != nil {
			httpContextDeleted(ctx)
		}
		return
	}
	ctx := currentState.httpContexts[contextID]
	if _, ok := currentState.pluginContexts[contextID]; ok && lastRoot.id == contextID {
		lastRoot.id, lastRoot.state = 0, nil
	}
	proxyOnDelete(contextID)
	if ctx != nil && httpContextDeleted != nil {
		httpContextDeleted(ctx)
	}
}

// bindActiveContext records the active table context in
// contextIDToRootID, where the SDK looks for the root of a context that
// dispatches a callout and checks that the context is still alive when the
// callout's answer comes.
func bindActiveContext() {
	id := currentState.activeContextID
	s := &httpTable[id&(httpTableSize-1)]
	if s.ctx != nil && s.id == id && !s.bound {
		currentState.contextIDToRootID[id] = s.root
		s.bound = true
	}
}
