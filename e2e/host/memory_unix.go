//go:build linux || darwin || freebsd

package host

import (
	"syscall"

	"github.com/tetratelabs/wazero/experimental"
)

// reservedMemory backs a linear memory with one anonymous mapping of its
// maximum size, as V8 does in Envoy: memory.grow only extends the slice
// over pages already reserved, never copies the memory, and a page costs
// RAM only once the guest touches it. (wazero's default reallocates and
// copies the whole memory on each grow: a guest that grows from 5 to
// 20 MiB a few pages at a time then spends most of its time in copies no
// real proxy makes.)
type reservedMemory struct{ buf []byte }

func (m *reservedMemory) Reallocate(size uint64) []byte {
	if size > uint64(len(m.buf)) {
		return nil // past the maximum: memory.grow fails, as in Envoy
	}
	return m.buf[:size]
}

func (m *reservedMemory) Free() {
	if m.buf != nil {
		_ = syscall.Munmap(m.buf)
		m.buf = nil
	}
}

// sliceMemory is wazero's behaviour, for when the reservation fails.
type sliceMemory struct{ buf []byte }

func (m *sliceMemory) Reallocate(size uint64) []byte {
	if size <= uint64(cap(m.buf)) {
		m.buf = m.buf[:size]
	} else {
		m.buf = append(m.buf, make([]byte, size-uint64(len(m.buf)))...)
	}
	return m.buf
}

func (m *sliceMemory) Free() { m.buf = nil }

func memoryAllocator() experimental.MemoryAllocator {
	return experimental.MemoryAllocatorFunc(func(capacity, maximum uint64) experimental.LinearMemory {
		buf, err := syscall.Mmap(-1, 0, int(maximum), syscall.PROT_READ|syscall.PROT_WRITE,
			syscall.MAP_PRIVATE|syscall.MAP_ANON|syscall.MAP_NORESERVE)
		if err != nil {
			return &sliceMemory{buf: make([]byte, 0, capacity)}
		}
		return &reservedMemory{buf: buf[:maximum:maximum]}
	})
}
