package host

// PendingCallouts is the number of proxy_http_call requests whose answer has
// not yet been delivered to the guest (tests use it to let callouts settle).
func (h *Host) PendingCallouts() int { return int(h.inflight.Load()) }
