// Package wasmpatch rewrites a compiled plugin module so that it no longer
// imports WASI's poll_oneoff.
//
// The Go runtime's netpoller calls poll_oneoff during garbage collection (the
// proxy-wasm SDK imports fmt, hence os). Envoy hosts before the fix pulled in
// by Envoy PR #45756 answer it with ENOSYS, and the runtime then dies with
// "fatal error: poll_oneoff failed" at the module's first GC. The rewrite
// removes the import and appends a function of the same type that does what
// the fixed host does: report success with zero events. Every function index
// that pointed past the removed import (calls, ref.func, the element
// segments, exports, start, names) is shifted down by one, and calls to the
// import are pointed at the new function.
package wasmpatch

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/tetratelabs/wabin/binary"
	"github.com/tetratelabs/wabin/leb128"
	"github.com/tetratelabs/wabin/wasm"
)

// ErrNoImport is returned when the module does not import the function.
var ErrNoImport = errors.New("module does not import the function")

// ENOSYS is WASI's errno for "function not supported".
const ENOSYS = 52

// EnvoyWASI lists the wasi_snapshot_preview1 functions every Envoy from 1.33
// provides (proxy-wasm-cpp-host); a module importing any other is refused
// with "Failed to load Wasm module due to a missing import".
var EnvoyWASI = []string{
	"fd_write", "fd_read", "fd_seek", "fd_close", "fd_fdstat_get", "fd_fdstat_set_flags",
	"environ_get", "environ_sizes_get", "args_get", "args_sizes_get", "clock_time_get",
	"random_get", "sched_yield", "poll_oneoff", "proc_exit", "path_open",
	"fd_prestat_get", "fd_prestat_dir_name",
}

// Report says what Rewrite changed.
type Report struct {
	PollOneoff bool     // poll_oneoff was replaced by a success-with-no-events function
	Stubbed    []string // other WASI imports Envoy lacks, now answering ENOSYS
}

// Rewrite makes a Go-built module loadable and alive on every Envoy from
// 1.33: it replaces the poll_oneoff import with an internal function that
// reports success with zero events (what fixed hosts do), and every other
// wasi_snapshot_preview1 import outside EnvoyWASI with an internal function
// answering ENOSYS (what the Go runtime and os package handle as an error).
func Rewrite(module []byte) ([]byte, Report, error) {
	var rep Report
	m, err := binary.DecodeModule(module, wasm.CoreFeaturesV2)
	if err != nil {
		return nil, rep, fmt.Errorf("decode module: %w", err)
	}
	const wasi = "wasi_snapshot_preview1"
	i32 := wasm.ValueTypeI32
	// poll_oneoff(in, out, nsubscriptions, nevents *size) -> errno
	pollBody := []byte{
		wasm.OpcodeLocalGet, 3, // nevents
		wasm.OpcodeI32Const, 0,
		wasm.OpcodeI32Store, 2, 0, // align 4, offset 0
		wasm.OpcodeI32Const, 0, // errno success
		wasm.OpcodeEnd,
	}
	for {
		err := replaceImport(m, wasi, "poll_oneoff", []wasm.ValueType{i32, i32, i32, i32}, []wasm.ValueType{i32}, pollBody, "meshsession.poll_oneoff_noop")
		if errors.Is(err, ErrNoImport) {
			break
		}
		if err != nil {
			return nil, rep, err
		}
		rep.PollOneoff = true
	}
	supported := map[string]bool{}
	for _, n := range EnvoyWASI {
		supported[n] = true
	}
	enosys := append([]byte{wasm.OpcodeI32Const}, leb128.EncodeInt32(ENOSYS)...)
	enosys = append(enosys, wasm.OpcodeEnd)
	for {
		var imp *wasm.Import
		for _, candidate := range m.ImportSection {
			if candidate.Type == wasm.ExternTypeFunc && candidate.Module == wasi && !supported[candidate.Name] {
				imp = candidate
				break
			}
		}
		if imp == nil {
			break
		}
		ft := m.TypeSection[imp.DescFunc]
		if len(ft.Results) != 1 || ft.Results[0] != i32 {
			return nil, rep, fmt.Errorf("%s.%s: cannot stub a function that does not return an errno", wasi, imp.Name)
		}
		name := imp.Name
		if err := replaceImport(m, wasi, name, ft.Params, ft.Results, enosys, "meshsession."+name+"_enosys"); err != nil {
			return nil, rep, err
		}
		rep.Stubbed = append(rep.Stubbed, name)
	}
	if !rep.PollOneoff {
		return nil, rep, fmt.Errorf("%s.poll_oneoff: %w", wasi, ErrNoImport)
	}
	return binary.EncodeModule(m), rep, nil
}

// replaceImport removes the function import module.name, whose type must be
// params -> results, and appends a function with that type and body.
func replaceImport(m *wasm.Module, module, name string, params, results []wasm.ValueType, body []byte, funcName string) error {
	removed := -1 // function index of the import
	importPos := -1
	fn := 0
	for i, imp := range m.ImportSection {
		if imp.Type != wasm.ExternTypeFunc {
			continue
		}
		if imp.Module == module && imp.Name == name {
			removed, importPos = fn, i
			break
		}
		fn++
	}
	if removed < 0 {
		return fmt.Errorf("%s.%s: %w", module, name, ErrNoImport)
	}
	typeIdx := m.ImportSection[importPos].DescFunc
	if int(typeIdx) >= len(m.TypeSection) || !m.TypeSection[typeIdx].EqualsSignature(params, results) {
		return fmt.Errorf("%s.%s: unexpected function type", module, name)
	}

	importCount := m.ImportFuncCount()
	total := importCount + uint32(len(m.FunctionSection))
	// After the removal the appended function takes the last index.
	replacement := total - 1
	remap := func(idx uint32) (uint32, error) {
		switch {
		case idx >= total:
			return 0, fmt.Errorf("function index %d out of range (%d functions)", idx, total)
		case idx == uint32(removed):
			return replacement, nil
		case idx > uint32(removed):
			return idx - 1, nil
		default:
			return idx, nil
		}
	}

	for i, code := range m.CodeSection {
		nb, err := remapBody(code.Body, remap)
		if err != nil {
			return fmt.Errorf("function %d: %w", importCount+uint32(i), err)
		}
		code.Body = nb
	}
	for _, seg := range m.ElementSection {
		for _, idx := range seg.Init {
			if idx == nil {
				continue
			}
			v, err := remap(*idx)
			if err != nil {
				return fmt.Errorf("element segment: %w", err)
			}
			*idx = v
		}
	}
	for _, exp := range m.ExportSection {
		if exp.Type != wasm.ExternTypeFunc {
			continue
		}
		v, err := remap(exp.Index)
		if err != nil {
			return fmt.Errorf("export %q: %w", exp.Name, err)
		}
		exp.Index = v
	}
	if m.StartSection != nil {
		v, err := remap(*m.StartSection)
		if err != nil {
			return fmt.Errorf("start: %w", err)
		}
		m.StartSection = &v
	}
	for _, g := range m.GlobalSection {
		if g.Init != nil && g.Init.Opcode == wasm.OpcodeRefFunc {
			idx, _, err := leb128.DecodeUint32(bytes.NewReader(g.Init.Data))
			if err != nil {
				return fmt.Errorf("global init: %w", err)
			}
			v, err := remap(idx)
			if err != nil {
				return fmt.Errorf("global init: %w", err)
			}
			g.Init.Data = leb128.EncodeUint32(v)
		}
	}
	if ns := m.NameSection; ns != nil {
		names, err := remapNames(ns.FunctionNames, func(a *wasm.NameAssoc) *uint32 { return &a.Index }, uint32(removed), remap)
		if err != nil {
			return err
		}
		ns.FunctionNames = append(names, &wasm.NameAssoc{Index: replacement, Name: funcName})
		if ns.LocalNames, err = remapNames(ns.LocalNames, func(a *wasm.NameMapAssoc) *uint32 { return &a.Index }, uint32(removed), remap); err != nil {
			return err
		}
	}

	m.ImportSection = append(m.ImportSection[:importPos:importPos], m.ImportSection[importPos+1:]...)
	m.FunctionSection = append(m.FunctionSection, typeIdx)
	m.CodeSection = append(m.CodeSection, &wasm.Code{Body: body})
	return nil
}

// remapNames copies a name-section map (function names or their locals'
// names, by function index) without the removed function's entry and with
// the other indexes passed through remap.
func remapNames[T any](in []*T, index func(*T) *uint32, removed uint32, remap func(uint32) (uint32, error)) ([]*T, error) {
	var out []*T
	for _, a := range in {
		if *index(a) == removed {
			continue
		}
		v, err := remap(*index(a))
		if err != nil {
			return nil, fmt.Errorf("name section: %w", err)
		}
		c := *a
		*index(&c) = v
		out = append(out, &c)
	}
	return out, nil
}

// remapBody re-encodes a function body with every function index immediate
// (call, return_call, ref.func) passed through remap. It understands the
// instructions the Go compiler emits (MVP, sign extension, saturating
// truncation, bulk memory, reference types) and refuses any other, so a
// module it does not understand fails the build instead of being corrupted.
func remapBody(body []byte, remap func(uint32) (uint32, error)) ([]byte, error) {
	r := bytes.NewReader(body)
	out := make([]byte, 0, len(body))
	copyN := func(n int) error {
		for ; n > 0; n-- {
			b, err := r.ReadByte()
			if err != nil {
				return fmt.Errorf("truncated body: %w", err)
			}
			out = append(out, b)
		}
		return nil
	}
	// copyLEB copies one LEB128 number as it is.
	copyLEB := func() error {
		for i := 0; i < 10; i++ {
			b, err := r.ReadByte()
			if err != nil {
				return fmt.Errorf("truncated immediate: %w", err)
			}
			out = append(out, b)
			if b&0x80 == 0 {
				return nil
			}
		}
		return errors.New("LEB128 immediate too long")
	}
	// count copies a vector length (re-encoded) and returns it.
	count := func() (uint32, error) {
		n, _, err := leb128.DecodeUint32(r)
		if err == nil {
			out = append(out, leb128.EncodeUint32(n)...)
		}
		return n, err
	}
	funcIdx := func() error {
		idx, _, err := leb128.DecodeUint32(r)
		if err != nil {
			return fmt.Errorf("function index: %w", err)
		}
		v, err := remap(idx)
		if err != nil {
			return err
		}
		out = append(out, leb128.EncodeUint32(v)...)
		return nil
	}
	for r.Len() > 0 {
		pos := len(body) - r.Len()
		op, _ := r.ReadByte()
		out = append(out, op)
		var err error
		switch {
		case op == wasm.OpcodeCall || op == wasm.OpcodeRefFunc || op == 0x12: // 0x12: return_call
			err = funcIdx()
		case op == wasm.OpcodeBlock || op == wasm.OpcodeLoop || op == wasm.OpcodeIf:
			err = copyLEB() // block type: 0x40, a value type or an s33 type index
		case op == wasm.OpcodeBr || op == wasm.OpcodeBrIf,
			op >= wasm.OpcodeLocalGet && op <= wasm.OpcodeGlobalSet,
			op == wasm.OpcodeTableGet || op == wasm.OpcodeTableSet:
			err = copyLEB()
		case op == wasm.OpcodeBrTable:
			var n uint32
			n, err = count()
			for i := uint32(0); i <= n && err == nil; i++ {
				err = copyLEB()
			}
		case op == wasm.OpcodeCallIndirect || op == 0x13, // 0x13: return_call_indirect; type and table
			op >= wasm.OpcodeI32Load && op <= wasm.OpcodeI64Store32: // memarg: align, offset
			if err = copyLEB(); err == nil {
				err = copyLEB()
			}
		case op == wasm.OpcodeTypedSelect:
			var n uint32
			if n, err = count(); err == nil {
				err = copyN(int(n))
			}
		case op == wasm.OpcodeMemorySize || op == wasm.OpcodeMemoryGrow:
			err = copyN(1)
		case op == wasm.OpcodeI32Const || op == wasm.OpcodeI64Const:
			err = copyLEB()
		case op == wasm.OpcodeF32Const:
			err = copyN(4)
		case op == wasm.OpcodeF64Const:
			err = copyN(8)
		case op == wasm.OpcodeRefNull:
			err = copyN(1)
		case op == wasm.OpcodeMiscPrefix:
			err = copyMisc(r, &out, copyLEB, copyN)
		case op == wasm.OpcodeUnreachable, op == wasm.OpcodeNop, op == wasm.OpcodeElse,
			op == wasm.OpcodeEnd, op == wasm.OpcodeReturn, op == wasm.OpcodeDrop,
			op == wasm.OpcodeSelect, op == wasm.OpcodeRefIsNull,
			op >= wasm.OpcodeI32Eqz && op <= wasm.OpcodeI64Extend32S:
			// no immediates
		default:
			err = fmt.Errorf("unsupported opcode 0x%02x at offset %d", op, pos)
		}
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// copyMisc copies a 0xFC-prefixed instruction and its immediates.
func copyMisc(r *bytes.Reader, out *[]byte, copyLEB func() error, copyN func(int) error) error {
	sub, _, err := leb128.DecodeUint32(r)
	if err != nil {
		return fmt.Errorf("misc opcode: %w", err)
	}
	*out = append(*out, leb128.EncodeUint32(sub)...)
	switch {
	case sub <= 7: // saturating truncations
		return nil
	case sub == 8: // memory.init dataidx 0x00
		if err := copyLEB(); err != nil {
			return err
		}
		return copyN(1)
	case sub == 9, sub == 13, sub >= 15 && sub <= 17: // data.drop, elem.drop, table.grow/size/fill
		return copyLEB()
	case sub == 10: // memory.copy 0x00 0x00
		return copyN(2)
	case sub == 11: // memory.fill 0x00
		return copyN(1)
	case sub == 12, sub == 14: // table.init, table.copy
		if err := copyLEB(); err != nil {
			return err
		}
		return copyLEB()
	default:
		return fmt.Errorf("unsupported misc opcode 0xfc %d", sub)
	}
}

// FuncNames lists a module's function imports as "module.name" and its
// exported function names.
func FuncNames(module []byte) (imports, exports []string, err error) {
	m, err := binary.DecodeModule(module, wasm.CoreFeaturesV2)
	if err != nil {
		return nil, nil, fmt.Errorf("decode module: %w", err)
	}
	for _, imp := range m.ImportSection {
		if imp.Type == wasm.ExternTypeFunc {
			imports = append(imports, imp.Module+"."+imp.Name)
		}
	}
	for _, exp := range m.ExportSection {
		if exp.Type == wasm.ExternTypeFunc {
			exports = append(exports, exp.Name)
		}
	}
	return imports, exports, nil
}
