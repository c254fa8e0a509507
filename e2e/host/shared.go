package host

import (
	"sort"
	"sync"
)

// Process is what Envoy keeps per process for all its Wasm VMs: the
// shared-data stores and shared queues, keyed by vm_id. Hosts created with the
// same Process (Config.Process) share them, as plugins in one Envoy do; by
// default each Host gets its own Process.
type Process struct {
	mu     sync.Mutex
	cas    uint32 // global CAS counter, never 0 once assigned
	stores map[string]*SharedData

	qmu      sync.Mutex
	queues   map[uint32]*sharedQueue
	queueIDs map[queueKey]uint32
	nextQ    uint32
}

// NewProcess returns an empty process-wide registry.
func NewProcess() *Process {
	return &Process{
		stores:   map[string]*SharedData{},
		queues:   map[uint32]*sharedQueue{},
		queueIDs: map[queueKey]uint32{},
	}
}

// SharedData returns the shared-data store of vmID, creating it if needed.
func (p *Process) SharedData(vmID string) *SharedData {
	p.mu.Lock()
	defer p.mu.Unlock()
	s, ok := p.stores[vmID]
	if !ok {
		s = &SharedData{p: p, entries: map[string]sharedEntry{}}
		p.stores[vmID] = s
	}
	return s
}

// nextCAS returns the next value of the global counter, skipping 0.
// Callers hold p.mu.
func (p *Process) nextCAS() uint32 {
	p.cas++
	if p.cas == 0 {
		p.cas++
	}
	return p.cas
}

// SharedData is one vm_id's key/value store with Envoy's rules: a missing key
// is NotFound; a set with cas 0 or on a new key writes unconditionally; a set
// with a non-zero cas that is not the current one is a CasMismatch; every
// write assigns a fresh cas. There is no delete.
type SharedData struct {
	p       *Process
	entries map[string]sharedEntry
}

type sharedEntry struct {
	value []byte
	cas   uint32
}

// Get returns a copy of the value of key and its cas, or StatusNotFound.
func (s *SharedData) Get(key string) ([]byte, uint32, Status) {
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	e, ok := s.entries[key]
	if !ok {
		return nil, 0, StatusNotFound
	}
	return append([]byte(nil), e.value...), e.cas, StatusOK
}

// Set writes value under key following Envoy's CAS rules. It copies value.
func (s *SharedData) Set(key string, value []byte, cas uint32) Status {
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	if e, ok := s.entries[key]; ok && cas != 0 && cas != e.cas {
		return StatusCasMismatch
	}
	s.entries[key] = sharedEntry{value: append([]byte(nil), value...), cas: s.p.nextCAS()}
	return StatusOK
}

// Keys lists the keys present, sorted.
func (s *SharedData) Keys() []string {
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	keys := make([]string, 0, len(s.entries))
	for k := range s.entries {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Len is the number of keys.
func (s *SharedData) Len() int {
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	return len(s.entries)
}

type queueKey struct{ vmID, name string }

type sharedQueue struct {
	key   queueKey
	items [][]byte
	// owner is notified (proxy_on_queue_ready) on enqueue: the last worker
	// that registered the queue, as in Envoy.
	owner func(queueID uint32)
}

// registerQueue creates or re-owns the queue vmID/name and returns its id.
func (p *Process) registerQueue(vmID, name string, owner func(uint32)) uint32 {
	p.qmu.Lock()
	defer p.qmu.Unlock()
	k := queueKey{vmID, name}
	if id, ok := p.queueIDs[k]; ok {
		p.queues[id].owner = owner
		return id
	}
	p.nextQ++
	id := p.nextQ
	p.queueIDs[k] = id
	p.queues[id] = &sharedQueue{key: k, owner: owner}
	return id
}

func (p *Process) resolveQueue(vmID, name string) (uint32, bool) {
	p.qmu.Lock()
	defer p.qmu.Unlock()
	id, ok := p.queueIDs[queueKey{vmID, name}]
	return id, ok
}

// enqueue appends a copy of value; the owner is notified outside the lock.
func (p *Process) enqueue(id uint32, value []byte) Status {
	p.qmu.Lock()
	q, ok := p.queues[id]
	if !ok {
		p.qmu.Unlock()
		return StatusNotFound
	}
	q.items = append(q.items, append([]byte(nil), value...))
	owner := q.owner
	p.qmu.Unlock()
	if owner != nil {
		owner(id)
	}
	return StatusOK
}

func (p *Process) dequeue(id uint32) ([]byte, Status) {
	p.qmu.Lock()
	defer p.qmu.Unlock()
	q, ok := p.queues[id]
	if !ok {
		return nil, StatusNotFound
	}
	if len(q.items) == 0 {
		return nil, StatusEmpty
	}
	v := q.items[0]
	q.items[0] = nil
	q.items = q.items[1:]
	return v, StatusOK
}
