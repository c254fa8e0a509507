package filter

import (
	"errors"
	"strconv"
	"time"

	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"

	"github.com/meshsession/meshsession/plugin/protocol"
)

// maxCalloutBody bounds what is read of a sessionsvc answer.
const maxCalloutBody = 64 << 20

// errReset is a callout that ended without a response (Envoy: a reset stream).
var errReset = errors.New("sessionsvc call reset: no response")

// callout calls sessionsvc's internal API on the configured cluster. cb runs
// later, on this worker, with the HTTP status and body, or err when the call
// got no response.
func (p *pluginContext) callout(method, path string, body []byte, cb func(status int, body []byte, err error)) error {
	return p.calloutTimeout(method, path, body, p.cfg.Timeout, cb)
}

// calloutTimeout is callout with its own timeout (the sync long-poll's).
func (p *pluginContext) calloutTimeout(method, path string, body []byte, timeout time.Duration, cb func(status int, body []byte, err error)) error {
	cfg := p.cfg
	headers := [][2]string{
		{":method", method},
		{":path", path},
		{":authority", cfg.Authority},
		{protocol.HeaderKey, cfg.InternalKey},
		{"accept", "application/json"},
	}
	if body != nil {
		headers = append(headers, [2]string{"content-type", "application/json"})
	}
	_, err := proxywasm.DispatchHttpCall(cfg.Cluster, headers, body, nil, uint32(timeout.Milliseconds()),
		func(numHeaders, bodySize, numTrailers int) {
			if numHeaders == 0 {
				cb(0, nil, errReset)
				return
			}
			status := 0
			hdrs, _ := proxywasm.GetHttpCallResponseHeaders()
			for _, kv := range hdrs {
				if kv[0] == ":status" {
					status, _ = strconv.Atoi(kv[1])
					break
				}
			}
			var data []byte
			if bodySize > 0 {
				n := bodySize
				if n > maxCalloutBody {
					n = maxCalloutBody
				}
				data, _ = proxywasm.GetHttpCallResponseBody(0, n)
			}
			cb(status, data, nil)
		})
	return err
}
