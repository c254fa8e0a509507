// Package host runs proxy-wasm 0.2.x modules on wazero the way Envoy runs
// them: the VMs, the ABI's host functions and one HTTP filter stream per
// request, driven callback by callback through Stream. It serves no HTTP
// itself (its only HTTP requests are the filter's http_call callouts).
//
// # Who runs requests through it
//
//   - e2e/devproxy (Proxy.ServeHTTP) is the only code that turns an HTTP
//     request into a Stream: it serves `make run` (e2e/cmd/meshsession-dev),
//     the e2e tests and the benchmarks (e2e/e2etest). What Envoy does around
//     the filter lives there: the connection manager's path normalisation and
//     x-forwarded-* headers, the router and its local replies, waiting on a
//     held stream, writing a local reply or a stream reset downstream, and the
//     failure policy.
//   - plugin/filter and plugin's module tests drive Streams directly on the
//     built plugin.wasm (callback by callback, no HTTP).
//   - This package's own tests drive Streams on testdata/guest, a minimal
//     ABI-level module whose x-cmd request header picks what it does.
//
// # Model
//
// New compiles the module once (wazero's compiler) and instantiates
// Config.Workers VMs of it (default 2), each a module instance with its own
// linear memory, like Envoy's one VM per worker thread. For each VM it calls
// _initialize (Go's package init; no start function runs), then, as
// proxy-wasm-cpp-host does, proxy_on_context_create(root, 0),
// proxy_on_vm_start(root, len(VMConfig)) and proxy_on_configure(root,
// len(PluginConfig)). A false answer is a start error (*VMError) quoting the
// guest's own log lines, so "field X is wrong" reaches the user.
//
// All calls into one VM are serialised by the worker's lock: stream
// callbacks, http_call responses, ticks and queue notifications. Workers run
// in parallel. NewStream(-1) picks a worker round-robin; NewStream(i) pins it.
//
// A Stream is an HTTP context. Its guest context is created at the first
// callback (proxy_on_context_create(id, root)). RequestHeaders, RequestBody,
// RequestTrailers, ResponseHeaders, ResponseBody and ResponseTrailers call the
// guest and return its Action; a local response (proxy_send_local_response)
// stops the stream (Result.LocalResponse, Action forced to Pause as Envoy's
// stopNextIteration). A paused stream is resumed from outside its callbacks
// (typically an http_call response): Wait returns EventContinue,
// EventLocalResponse or EventClose. Finish ends the stream as Envoy does:
// proxy_on_log (access-log phase, maps read-only), proxy_on_done,
// proxy_on_delete. Always call Finish: without proxy_on_delete the guest
// leaks the context.
//
// # Envoy behaviours reproduced
//
//   - Paused headers (proxy-wasm-cpp-host src/context.cc
//     convertVmCallResultToFilterHeadersStatus; Envoy
//     source/common/http/filter_manager.cc): a headers callback answering
//     Pause becomes StopAllIterationAndWatermark. Body and trailers of that
//     direction are then held by the host (Result.Held) and never reach the
//     filter until it calls proxy_continue_stream itself; Wait then delivers
//     what was held in one body callback (end of stream when it ended). With
//     Config.AllowOnHeadersStopIteration (Envoy >= 1.35
//     PluginConfig.allow_on_headers_stop_iteration) Pause is StopIteration:
//     body callbacks still come and a body Pause buffers.
//   - A response callback answering Continue (or proxy_continue_stream on the
//     response) sends the response headers downstream; a local reply after
//     that resets the stream (filter_manager.cc sendLocalReply): Result.Reset
//     during a callback, EventClose outside one.
//   - proxy_continue_stream (Envoy source/extensions/common/wasm/context.cc
//     Context::continueStream): deferred until the VM call returns, so a
//     callback that continues its own direction and answers Pause goes on;
//     afterwards the request headers, body and trailers are gone (BadArgument)
//     until the next request body callback, whichever direction was continued.
//     Downstream is a no-op, Upstream Unimplemented.
//   - Shared data (proxy-wasm-cpp-host src/shared_data.cc): one store per
//     vm_id (Process, shareable between Hosts), seen by every worker. Missing
//     key: NotFound. cas 0 or a new key: unconditional write. Stale non-zero
//     cas: CasMismatch. Every write takes a new cas from one process-wide
//     counter that skips 0. No delete.
//   - Shared queues per vm_id (proxy-wasm-cpp-host src/shared_queue.cc);
//     proxy_on_queue_ready goes to the root context of the worker that
//     registered the queue last.
//   - Ticks (Envoy source/extensions/common/wasm/wasm.cc Wasm::setTickPeriod):
//     proxy_set_tick_period_milliseconds arms a real timer per worker calling
//     proxy_on_tick on that worker's root context; 0 disarms it.
//     Config.DisableTicks leaves ticks to Host.Tick (deterministic tests).
//   - proxy_http_call (Envoy source/extensions/common/wasm/context.cc
//     Context::httpCall) to Config.Clusters (name -> base URL). Synchronous
//     BadArgument for an unknown cluster or a missing :authority, :path or
//     :method. Asynchronous answers on the calling worker's root context
//     (proxy_on_http_call_response): a cluster with no URL gets 503 "no
//     healthy upstream"; a connection failure or a connection closed before
//     the response headers gets 503 "upstream connect error or
//     disconnect/reset before headers. reset reason: connection failure"; a
//     timeout (the guest's, else Cluster.Timeout) gets 504 "upstream request
//     timeout" (Envoy's router local replies, source/common/router/router.cc);
//     a reset after the response headers (EOF mid-body) gets a callback with
//     no headers, no body and no trailers (Envoy's onFailure(Reset),
//     context.cc Context::onHttpCallFailure). Callouts in flight at Close are
//     cancelled without a callback.
//   - Header maps (Envoy context.cc getMap and the header-map calls): Envoy's
//     lower-case keys; get returns the first value; replace keeps one entry;
//     set_header_map_pairs replaces the map; a map that does not exist (yet)
//     is BadArgument (NotFound during on_log); the http_call response maps
//     exist only during its callback. Empty results are written as address 0,
//     size 0 (proxy-wasm-cpp-host WasmBase::copyToPointerSize).
//   - Buffers (Envoy context.cc Buffer::copyTo, Buffer::copyFrom):
//     get_buffer_bytes(start, max) clips to the buffer; set_buffer_bytes with
//     start 0 drains size bytes then prepends (start 0, size >= len replaces),
//     start >= len appends, otherwise BadArgument. A body callback answering
//     Pause buffers: the next chunk is appended.
//   - Properties (Envoy context.cc Context::getProperty, findValue): by path,
//     segments joined by NUL on the wire and by "." in the API. Built in:
//     plugin_name, plugin_root_id, plugin_vm_id,
//     request.{path,url_path,query,host,method,scheme,id,protocol,useragent,
//     referer,headers}, response.{code,headers}; source.* and destination.*
//     from Stream.SetDownstream; anything else from Stream.SetProperty,
//     Config.Properties or proxy_set_property. Integers are 8-byte
//     little-endian, maps are in the header-pairs format.
//   - Metrics (Envoy context.cc defineMetric, incrementMetric, getMetric):
//     counters, gauges, histograms, one stat per name for all workers; a
//     counter cannot decrease (BadArgument); get on a histogram is
//     BadArgument. Readable with Host.Metrics.
//   - Out-parameters (proxy-wasm-cpp-host src/exports.cc): the host allocates
//     guest memory with proxy_on_memory_allocate and writes little-endian u32
//     address/size. An out-of-bounds guest pointer is InvalidMemoryAccess,
//     never a host panic.
//   - A trap (Go panic, unreachable, out-of-bounds, proc_exit) fails that VM
//     (proxy-wasm-cpp-host WasmBase::fail; src/context.cc CHECK_FAIL_HTTP):
//     the call returns a *VMError (errors.Is ErrVMFailed) with wazero's error
//     and the guest's output (first and last lines of the call), later calls
//     on that VM fail at once, the other workers and the process go on.
//     Config.FailurePolicy (Envoy PluginConfig.failure_policy) tells the
//     embedder (e2e/devproxy) what to do: FailClosed (503), FailOpen (pass
//     through); with FailReload the Host recreates the VM at the next
//     NewStream on that worker.
//   - WASI (Envoy's own subset: proxy-wasm-cpp-host src/exports.cc
//     wasi_unstable_*): wazero's wasi_snapshot_preview1 with real clocks,
//     nanosleep and crypto/rand; stdout/stderr are captured as log lines. With
//     Config.PollOneoffENOSYS, poll_oneoff answers ENOSYS like Envoy before
//     PR #45756 (a module whose Go runtime needs it dies at its first GC).
//   - proxy_call_foreign_function (proxy-wasm-cpp-host src/exports.cc) answers
//     NotFound (no foreign functions are registered, as in an Envoy without
//     them); gRPC calls are Unimplemented; proxy_get_status writes code 0 and
//     an empty message.
//
// # Differences from Envoy
//
//   - HTTP only (no network filters: proxy_on_new_connection & co are never
//     called). No gRPC. One plugin per Host (Hosts can share a Process).
//   - A local response is recorded, not run through the response phase: the
//     embedder may call ResponseHeaders with it to mimic Envoy's encoder path
//     (e2e/devproxy does not: it writes the filter's local reply as is,
//     content-type text/plain added as Envoy's sendLocalReply does).
//   - Calls during _initialize are not restricted (Envoy traps most host calls
//     there).
//   - Envoy restricts the configuration buffers to on_vm_start/on_configure;
//     here they are readable at any time.
//   - request.protocol is always "HTTP/1.1"; request.time, request.duration,
//     connection.* and upstream.* are not built in (set them with
//     SetProperty).
package host
