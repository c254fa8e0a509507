package host

import (
	"encoding/binary"
	"strings"
)

// PropertyString serialises a string property value (raw bytes, as Envoy).
func PropertyString(s string) []byte { return []byte(s) }

// PropertyInt serialises an integer property value (8 bytes little-endian,
// as Envoy does for e.g. source.port and response.code).
func PropertyInt(v int64) []byte {
	b := make([]byte, 8)
	binary.LittleEndian.PutUint64(b, uint64(v))
	return b
}

// PropertyBool serialises a boolean property value (one byte).
func PropertyBool(v bool) []byte {
	if v {
		return []byte{1}
	}
	return []byte{0}
}

// PropertyMap serialises a map property value in the header-pairs format (as
// Envoy does for request.headers; the SDK reads it with GetPropertyMap).
func PropertyMap(pairs [][2]string) []byte { return EncodePairs(pairs) }

// propertyKey turns the guest's NUL-separated path into the dotted key the
// embedder uses ("source.address").
func propertyKey(path []byte) string {
	return strings.ReplaceAll(string(path), "\x00", ".")
}

// hostProperty answers the built-in host-wide properties.
func (w *worker) hostProperty(key string) ([]byte, bool) {
	switch key {
	case "plugin_name":
		return []byte(w.h.cfg.Name), true
	case "plugin_root_id":
		return []byte(w.h.cfg.RootID), true
	case "plugin_vm_id":
		return []byte(w.h.cfg.VMID), true
	}
	if v, ok := w.rootProps[key]; ok {
		return v, true
	}
	if v, ok := w.h.cfg.Properties[key]; ok {
		return v, true
	}
	return nil, false
}

// headerProperties are the request properties that are the value of one
// request header (Envoy's request attributes).
var headerProperties = map[string]string{
	"request.path": ":path", "request.host": ":authority", "request.method": ":method",
	"request.scheme": ":scheme", "request.id": "x-request-id", "request.useragent": "user-agent",
	"request.referer": "referer",
}

// streamProperty answers properties of a stream: set ones first, then those
// derived from its headers.
func (s *Stream) property(key string) ([]byte, bool) {
	if v, ok := s.props[key]; ok {
		return v, true
	}
	req := s.reqHeaders
	header := func(m *headerMap, name string) ([]byte, bool) {
		if m == nil {
			return nil, false
		}
		v, ok := m.get(name)
		return []byte(v), ok
	}
	if name, ok := headerProperties[key]; ok {
		return header(req, name)
	}
	switch key {
	case "request.url_path":
		v, ok := header(req, ":path")
		if i := strings.IndexByte(string(v), '?'); i >= 0 {
			v = v[:i]
		}
		return v, ok
	case "request.query":
		v, ok := header(req, ":path")
		if !ok {
			return nil, false
		}
		if i := strings.IndexByte(string(v), '?'); i >= 0 {
			return v[i+1:], true
		}
		return []byte{}, true
	case "request.protocol":
		if req == nil {
			return nil, false
		}
		return []byte("HTTP/1.1"), true
	case "request.headers":
		if req == nil {
			return nil, false
		}
		return EncodePairs(req.pairs), true
	case "response.headers":
		if s.respHeaders == nil {
			return nil, false
		}
		return EncodePairs(s.respHeaders.pairs), true
	case "response.code":
		if s.respHeaders == nil {
			return nil, false
		}
		v, ok := s.respHeaders.get(":status")
		if !ok {
			return nil, false
		}
		n := int64(0)
		for _, c := range v {
			if c < '0' || c > '9' {
				return nil, false
			}
			n = n*10 + int64(c-'0')
		}
		return PropertyInt(n), true
	}
	return nil, false
}
