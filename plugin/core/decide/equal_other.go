//go:build !wasm

package decide

// sameToken reports whether a and b are equal (memequal is vectorised here).
func sameToken(a, b string) bool { return a == b }
