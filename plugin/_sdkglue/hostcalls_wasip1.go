//go:build wasip1 && !tinygo

// Host calls of the proxy-wasm ABI 0.2.1 for the standard Go toolchain.
//
// gc's //go:wasmimport takes only 32/64-bit integers, floats and pointers, and
// a Go pointer is not a 32-bit slot: every size is passed as uint32, and every
// out-parameter the host fills with a guest address is the address of a
// uint32 that takeBuffer turns back into the Go buffer handed out by
// proxy_on_memory_allocate.

package internal

import "unsafe"

//go:wasmimport env proxy_log
func hostLog(level uint32, msg *byte, msgSize uint32) uint32

//go:wasmimport env proxy_send_local_response
func hostSendLocalResponse(status uint32, detail *byte, detailSize uint32, body *byte, bodySize uint32, headers *byte, headersSize uint32, grpcStatus int32) uint32

//go:wasmimport env proxy_get_shared_data
func hostGetSharedData(key *byte, keySize uint32, retData *uint32, retSize *uint32, retCas *uint32) uint32

//go:wasmimport env proxy_set_shared_data
func hostSetSharedData(key *byte, keySize uint32, value *byte, valueSize uint32, cas uint32) uint32

//go:wasmimport env proxy_register_shared_queue
func hostRegisterSharedQueue(name *byte, nameSize uint32, retID *uint32) uint32

//go:wasmimport env proxy_resolve_shared_queue
func hostResolveSharedQueue(vmID *byte, vmIDSize uint32, name *byte, nameSize uint32, retID *uint32) uint32

//go:wasmimport env proxy_dequeue_shared_queue
func hostDequeueSharedQueue(queueID uint32, retData *uint32, retSize *uint32) uint32

//go:wasmimport env proxy_enqueue_shared_queue
func hostEnqueueSharedQueue(queueID uint32, value *byte, valueSize uint32) uint32

//go:wasmimport env proxy_get_header_map_value
func hostGetHeaderMapValue(mapType uint32, key *byte, keySize uint32, retData *uint32, retSize *uint32) uint32

//go:wasmimport env proxy_add_header_map_value
func hostAddHeaderMapValue(mapType uint32, key *byte, keySize uint32, value *byte, valueSize uint32) uint32

//go:wasmimport env proxy_replace_header_map_value
func hostReplaceHeaderMapValue(mapType uint32, key *byte, keySize uint32, value *byte, valueSize uint32) uint32

//go:wasmimport env proxy_remove_header_map_value
func hostRemoveHeaderMapValue(mapType uint32, key *byte, keySize uint32) uint32

//go:wasmimport env proxy_get_header_map_pairs
func hostGetHeaderMapPairs(mapType uint32, retData *uint32, retSize *uint32) uint32

//go:wasmimport env proxy_set_header_map_pairs
func hostSetHeaderMapPairs(mapType uint32, data *byte, size uint32) uint32

//go:wasmimport env proxy_get_buffer_bytes
func hostGetBufferBytes(bufferType uint32, start uint32, maxSize uint32, retData *uint32, retSize *uint32) uint32

//go:wasmimport env proxy_set_buffer_bytes
func hostSetBufferBytes(bufferType uint32, start uint32, maxSize uint32, data *byte, size uint32) uint32

//go:wasmimport env proxy_continue_stream
func hostContinueStream(streamType uint32) uint32

//go:wasmimport env proxy_close_stream
func hostCloseStream(streamType uint32) uint32

//go:wasmimport env proxy_http_call
func hostHttpCall(upstream *byte, upstreamSize uint32, headers *byte, headersSize uint32, body *byte, bodySize uint32, trailers *byte, trailersSize uint32, timeout uint32, retCalloutID *uint32) uint32

//go:wasmimport env proxy_call_foreign_function
func hostCallForeignFunction(name *byte, nameSize uint32, param *byte, paramSize uint32, retData *uint32, retSize *uint32) uint32

//go:wasmimport env proxy_set_tick_period_milliseconds
func hostSetTickPeriodMilliseconds(period uint32) uint32

//go:wasmimport env proxy_set_effective_context
func hostSetEffectiveContext(contextID uint32) uint32

//go:wasmimport env proxy_done
func hostDone() uint32

//go:wasmimport env proxy_define_metric
func hostDefineMetric(metricType uint32, name *byte, nameSize uint32, retID *uint32) uint32

//go:wasmimport env proxy_increment_metric
func hostIncrementMetric(metricID uint32, offset int64) uint32

//go:wasmimport env proxy_record_metric
func hostRecordMetric(metricID uint32, value uint64) uint32

//go:wasmimport env proxy_get_metric
func hostGetMetric(metricID uint32, retValue *uint64) uint32

//go:wasmimport env proxy_get_current_time_nanoseconds
func hostGetCurrentTimeNanoseconds(retTime *uint64) uint32

//go:wasmimport env proxy_get_property
func hostGetProperty(path *byte, pathSize uint32, retData *uint32, retSize *uint32) uint32

//go:wasmimport env proxy_set_property
func hostSetProperty(path *byte, pathSize uint32, value *byte, valueSize uint32) uint32

// ret holds the out-parameters of host calls. A pointer passed to a
// wasmimport function escapes, so out-parameters declared as locals would be
// heap-allocated on every call; the module instance is single-threaded and a
// host call never re-enters another host call that uses them (the only
// re-entry, proxy_on_memory_allocate, makes no host call), so package-level
// slots serve every call.
var ret struct {
	addr, size, cas uint32
	time            uint64
}

// takeBuffer turns the (address, size) a host call wrote into the Go buffer
// that proxy_on_memory_allocate handed out at that address, and releases
// every pending allocation: the SDK now references the one it returns, and
// the others (if any) the host asked for and did not use.
func takeBuffer(st uint32, addr, size uint32, data **byte, dataSize *int) Status {
	buf := allocations.take(addr)
	allocations.reset()
	if Status(st) != StatusOK || buf == nil || size == 0 || int(size) > len(buf) {
		*data, *dataSize = nil, 0
		return Status(st)
	}
	*data, *dataSize = &buf[0], int(size)
	return Status(st)
}

func ProxyLog(logLevel LogLevel, messageData *byte, messageSize int) Status {
	return Status(hostLog(uint32(logLevel), messageData, uint32(messageSize)))
}

func ProxySendLocalResponse(statusCode uint32, statusCodeDetailData *byte, statusCodeDetailsSize int,
	bodyData *byte, bodySize int, headersData *byte, headersSize int, grpcStatus int32) Status {
	return Status(hostSendLocalResponse(statusCode, statusCodeDetailData, uint32(statusCodeDetailsSize),
		bodyData, uint32(bodySize), headersData, uint32(headersSize), grpcStatus))
}

func ProxyGetSharedData(keyData *byte, keySize int, returnValueData **byte, returnValueSize *int, returnCas *uint32) Status {
	st := hostGetSharedData(keyData, uint32(keySize), &ret.addr, &ret.size, &ret.cas)
	*returnCas = ret.cas
	return takeBuffer(st, ret.addr, ret.size, returnValueData, returnValueSize)
}

// ProxyGetSharedDataCas is proxy_get_shared_data for the CAS alone: a
// value the host hands over is dropped with every pending allocation.
func ProxyGetSharedDataCas(keyData *byte, keySize int) (uint32, Status) {
	st := hostGetSharedData(keyData, uint32(keySize), &ret.addr, &ret.size, &ret.cas)
	allocations.reset()
	return ret.cas, Status(st)
}

func ProxySetSharedData(keyData *byte, keySize int, valueData *byte, valueSize int, cas uint32) Status {
	return Status(hostSetSharedData(keyData, uint32(keySize), valueData, uint32(valueSize), cas))
}

func ProxyRegisterSharedQueue(nameData *byte, nameSize int, returnID *uint32) Status {
	return Status(hostRegisterSharedQueue(nameData, uint32(nameSize), returnID))
}

func ProxyResolveSharedQueue(vmIDData *byte, vmIDSize int, nameData *byte, nameSize int, returnID *uint32) Status {
	return Status(hostResolveSharedQueue(vmIDData, uint32(vmIDSize), nameData, uint32(nameSize), returnID))
}

func ProxyDequeueSharedQueue(queueID uint32, returnValueData **byte, returnValueSize *int) Status {
	st := hostDequeueSharedQueue(queueID, &ret.addr, &ret.size)
	return takeBuffer(st, ret.addr, ret.size, returnValueData, returnValueSize)
}

func ProxyEnqueueSharedQueue(queueID uint32, valueData *byte, valueSize int) Status {
	return Status(hostEnqueueSharedQueue(queueID, valueData, uint32(valueSize)))
}

func ProxyGetHeaderMapValue(mapType MapType, keyData *byte, keySize int, returnValueData **byte, returnValueSize *int) Status {
	st := hostGetHeaderMapValue(uint32(mapType), keyData, uint32(keySize), &ret.addr, &ret.size)
	return takeBuffer(st, ret.addr, ret.size, returnValueData, returnValueSize)
}

func ProxyAddHeaderMapValue(mapType MapType, keyData *byte, keySize int, valueData *byte, valueSize int) Status {
	return Status(hostAddHeaderMapValue(uint32(mapType), keyData, uint32(keySize), valueData, uint32(valueSize)))
}

func ProxyReplaceHeaderMapValue(mapType MapType, keyData *byte, keySize int, valueData *byte, valueSize int) Status {
	return Status(hostReplaceHeaderMapValue(uint32(mapType), keyData, uint32(keySize), valueData, uint32(valueSize)))
}

func ProxyRemoveHeaderMapValue(mapType MapType, keyData *byte, keySize int) Status {
	return Status(hostRemoveHeaderMapValue(uint32(mapType), keyData, uint32(keySize)))
}

func ProxyGetHeaderMapPairs(mapType MapType, returnValueData **byte, returnValueSize *int) Status {
	st := hostGetHeaderMapPairs(uint32(mapType), &ret.addr, &ret.size)
	return takeBuffer(st, ret.addr, ret.size, returnValueData, returnValueSize)
}

func ProxySetHeaderMapPairs(mapType MapType, mapData *byte, mapSize int) Status {
	return Status(hostSetHeaderMapPairs(uint32(mapType), mapData, uint32(mapSize)))
}

func ProxyGetBufferBytes(bufferType BufferType, start int, maxSize int, returnBufferData **byte, returnBufferSize *int) Status {
	st := hostGetBufferBytes(uint32(bufferType), uint32(start), uint32(maxSize), &ret.addr, &ret.size)
	return takeBuffer(st, ret.addr, ret.size, returnBufferData, returnBufferSize)
}

func ProxySetBufferBytes(bufferType BufferType, start int, maxSize int, bufferData *byte, bufferSize int) Status {
	return Status(hostSetBufferBytes(uint32(bufferType), uint32(start), uint32(maxSize), bufferData, uint32(bufferSize)))
}

func ProxyContinueStream(streamType StreamType) Status {
	return Status(hostContinueStream(uint32(streamType)))
}

func ProxyCloseStream(streamType StreamType) Status {
	return Status(hostCloseStream(uint32(streamType)))
}

func ProxyHttpCall(upstreamData *byte, upstreamSize int, headerData *byte, headerSize int,
	bodyData *byte, bodySize int, trailersData *byte, trailersSize int, timeout uint32, calloutIDPtr *uint32,
) Status {
	bindActiveContext() // the SDK registers the callout under the active context's root
	return Status(hostHttpCall(upstreamData, uint32(upstreamSize), headerData, uint32(headerSize),
		bodyData, uint32(bodySize), trailersData, uint32(trailersSize), timeout, calloutIDPtr))
}

func ProxyCallForeignFunction(funcNamePtr *byte, funcNameSize int, paramPtr *byte, paramSize int, returnData **byte, returnSize *int) Status {
	st := hostCallForeignFunction(funcNamePtr, uint32(funcNameSize), paramPtr, uint32(paramSize), &ret.addr, &ret.size)
	return takeBuffer(st, ret.addr, ret.size, returnData, returnSize)
}

func ProxySetTickPeriodMilliseconds(period uint32) Status {
	return Status(hostSetTickPeriodMilliseconds(period))
}

func ProxySetEffectiveContext(contextID uint32) Status {
	return Status(hostSetEffectiveContext(contextID))
}

func ProxyDone() Status {
	return Status(hostDone())
}

func ProxyDefineMetric(metricType MetricType, metricNameData *byte, metricNameSize int, returnMetricIDPtr *uint32) Status {
	return Status(hostDefineMetric(uint32(metricType), metricNameData, uint32(metricNameSize), returnMetricIDPtr))
}

func ProxyIncrementMetric(metricID uint32, offset int64) Status {
	return Status(hostIncrementMetric(metricID, offset))
}

func ProxyRecordMetric(metricID uint32, value uint64) Status {
	return Status(hostRecordMetric(metricID, value))
}

func ProxyGetMetric(metricID uint32, returnMetricValue *uint64) Status {
	return Status(hostGetMetric(metricID, returnMetricValue))
}

// ProxyGetCurrentTimeNanoseconds is the host's wall clock (one host call,
// where time.Now costs two WASI clock_time_get calls).
func ProxyGetCurrentTimeNanoseconds() (int64, Status) {
	st := Status(hostGetCurrentTimeNanoseconds(&ret.time))
	return int64(ret.time), st
}

func ProxyGetProperty(pathData *byte, pathSize int, returnValueData **byte, returnValueSize *int) Status {
	st := hostGetProperty(pathData, uint32(pathSize), &ret.addr, &ret.size)
	return takeBuffer(st, ret.addr, ret.size, returnValueData, returnValueSize)
}

func ProxySetProperty(pathData *byte, pathSize int, valueData *byte, valueSize int) Status {
	return Status(hostSetProperty(pathData, uint32(pathSize), valueData, uint32(valueSize)))
}

// addressOf is the guest address of a buffer's first byte.
func addressOf(b []byte) uint32 {
	return uint32(uintptr(unsafe.Pointer(&b[0])))
}
