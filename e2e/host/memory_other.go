//go:build !(linux || darwin || freebsd)

package host

import "github.com/tetratelabs/wazero/experimental"

// memoryAllocator: wazero's own (reallocating) linear memory elsewhere.
func memoryAllocator() experimental.MemoryAllocator { return nil }
