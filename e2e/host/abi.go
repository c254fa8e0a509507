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

var statusNames = map[Status]string{
	StatusOK: "Ok", StatusNotFound: "NotFound", StatusBadArgument: "BadArgument",
	StatusSerializationFailure: "SerializationFailure", StatusParseFailure: "ParseFailure",
	StatusBadExpression: "BadExpression", StatusInvalidMemoryAccess: "InvalidMemoryAccess",
	StatusEmpty: "Empty", StatusCasMismatch: "CasMismatch", StatusResultMismatch: "ResultMismatch",
	StatusInternalFailure: "InternalFailure", StatusBrokenConnection: "BrokenConnection",
	StatusUnimplemented: "Unimplemented",
}

func (s Status) String() string {
	if n, ok := statusNames[s]; ok {
		return n
	}
	return fmt.Sprintf("Status(%d)", uint32(s))
}

// Action is what a stream callback answers: continue or pause the filter chain.
type Action uint32

// Stream callback answers.
const (
	ActionContinue Action = 0
	ActionPause    Action = 1
)

func (a Action) String() string {
	switch a {
	case ActionContinue:
		return "Continue"
	case ActionPause:
		return "Pause"
	}
	return fmt.Sprintf("Action(%d)", uint32(a))
}

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
	switch s {
	case StreamRequest:
		return "request"
	case StreamResponse:
		return "response"
	case StreamDownstream:
		return "downstream"
	case StreamUpstream:
		return "upstream"
	}
	return fmt.Sprintf("StreamType(%d)", uint32(s))
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
	switch m {
	case MetricCounter:
		return "counter"
	case MetricGauge:
		return "gauge"
	case MetricHistogram:
		return "histogram"
	}
	return fmt.Sprintf("MetricType(%d)", uint32(m))
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
	switch l {
	case LogTrace:
		return "trace"
	case LogDebug:
		return "debug"
	case LogInfo:
		return "info"
	case LogWarn:
		return "warn"
	case LogError:
		return "error"
	case LogCritical:
		return "critical"
	}
	return fmt.Sprintf("LogLevel(%d)", uint32(l))
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
	switch p {
	case FailClosed:
		return "FAIL_CLOSED"
	case FailOpen:
		return "FAIL_OPEN"
	case FailReload:
		return "FAIL_RELOAD"
	}
	return fmt.Sprintf("FailurePolicy(%d)", int(p))
}
