package host

import "fmt"

// Status is a proxy-wasm WasmResult as returned by host functions.
type Status uint32

// proxy-wasm 0.2.x result codes.
const (
	StatusOK                   Status = 0
	StatusNotFound             Status = 1
	StatusBadArgument          Status = 2
	StatusSerializationFailure Status = 3
	StatusParseFailure         Status = 4
	StatusBadExpression        Status = 5
	StatusInvalidMemoryAccess  Status = 6
	StatusEmpty                Status = 7
	StatusCasMismatch          Status = 8
	StatusResultMismatch       Status = 9
	StatusInternalFailure      Status = 10
	StatusBrokenConnection     Status = 11
	StatusUnimplemented        Status = 12
)

// enumString is names[v] (the names of an enumeration's values, in order
// from 0; "" for a value without one), or typ(v) for any other value.
func enumString[T ~uint32 | ~int](v T, typ string, names []string) string {
	if uint64(v) < uint64(len(names)) && names[v] != "" {
		return names[v]
	}
	return fmt.Sprintf("%s(%d)", typ, v)
}

var statusNames = []string{"Ok", "NotFound", "BadArgument", "SerializationFailure", "ParseFailure",
	"BadExpression", "InvalidMemoryAccess", "Empty", "CasMismatch", "ResultMismatch",
	"InternalFailure", "BrokenConnection", "Unimplemented"}

func (s Status) String() string { return enumString(s, "Status", statusNames) }

// Action is what a stream callback answers: continue or pause the filter chain.
type Action uint32

// Stream callback answers.
const (
	ActionContinue Action = 0
	ActionPause    Action = 1
)

func (a Action) String() string { return enumString(a, "Action", []string{"Continue", "Pause"}) }

// MapType names a header map in proxy_*_header_map_* calls.
type MapType uint32

// Header maps.
const (
	MapRequestHeaders          MapType = 0
	MapRequestTrailers         MapType = 1
	MapResponseHeaders         MapType = 2
	MapResponseTrailers        MapType = 3
	MapGrpcInitialMetadata     MapType = 4
	MapGrpcTrailingMetadata    MapType = 5
	MapHTTPCallResponseHeaders MapType = 6
	MapHTTPCallResponseTrailer MapType = 7
)

// BufferType names a buffer in proxy_get_buffer_bytes / proxy_set_buffer_bytes.
type BufferType uint32

// Buffers.
const (
	BufferRequestBody         BufferType = 0
	BufferResponseBody        BufferType = 1
	BufferDownstreamData      BufferType = 2
	BufferUpstreamData        BufferType = 3
	BufferHTTPCallResponse    BufferType = 4
	BufferGrpcReceive         BufferType = 5
	BufferVMConfiguration     BufferType = 6
	BufferPluginConfiguration BufferType = 7
	BufferCallData            BufferType = 8
)

// StreamType names the direction in proxy_continue_stream / proxy_close_stream.
type StreamType uint32

// Stream directions.
const (
	StreamRequest    StreamType = 0
	StreamResponse   StreamType = 1
	StreamDownstream StreamType = 2
	StreamUpstream   StreamType = 3
)

func (s StreamType) String() string {
	return enumString(s, "StreamType", []string{"request", "response", "downstream", "upstream"})
}

// MetricType is the kind of a metric defined by proxy_define_metric.
type MetricType uint32

// Metric kinds.
const (
	MetricCounter   MetricType = 0
	MetricGauge     MetricType = 1
	MetricHistogram MetricType = 2
)

func (m MetricType) String() string {
	return enumString(m, "MetricType", []string{"counter", "gauge", "histogram"})
}

// LogLevel is a proxy_log level.
type LogLevel uint32

// Log levels.
const (
	LogTrace    LogLevel = 0
	LogDebug    LogLevel = 1
	LogInfo     LogLevel = 2
	LogWarn     LogLevel = 3
	LogError    LogLevel = 4
	LogCritical LogLevel = 5
)

func (l LogLevel) String() string {
	return enumString(l, "LogLevel", []string{"trace", "debug", "info", "warn", "error", "critical"})
}

// FailurePolicy is Envoy's failure_policy: what the embedder does with a
// request when the plugin's VM has failed (trapped).
type FailurePolicy int

// Failure policies (Envoy >= 1.33 names).
const (
	// FailClosed answers 503 (Envoy's default).
	FailClosed FailurePolicy = iota
	// FailOpen passes requests through without the plugin.
	FailOpen
	// FailReload recreates the failed VM before its next stream.
	FailReload
)

func (p FailurePolicy) String() string {
	return enumString(p, "FailurePolicy", []string{"FAIL_CLOSED", "FAIL_OPEN", "FAIL_RELOAD"})
}
