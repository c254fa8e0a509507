package revocation

import (
	"fmt"
	"strings"
	"testing"
	"unsafe"
)

// benchPage builds one page of n revocations as sessionsvc's encoding/json
// would write it.
func benchPage(n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, `{"epoch":"big","cursor":%d,"more":false,"reset":true,"now":1800000000,"changes":[`, n)
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		key := fmt.Sprintf("fp:%043d", i)
		if i%2 == 0 {
			key = fmt.Sprintf("sid:%08x-0000-4000-8000-%012x", i, i)
		}
		fmt.Fprintf(&b, `{"seq":%d,"op":"revoke","key":%q,"exp":1800003600,"reason":"manual"}`, i+1, key)
	}
	b.WriteString("]}")
	return b.String()
}

func BenchmarkParsePage100k(b *testing.B) {
	js := benchPage(100000)
	b.SetBytes(int64(len(js)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := parsePage(js); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkInsert100k(b *testing.B) {
	keys := make([]string, 100000)
	for i := range keys {
		keys[i] = fmt.Sprintf("sid:%08x-0000-4000-8000-%012x", i, i)
	}
	b.ReportAllocs()
	for b.Loop() {
		m := make(map[string]entry, len(keys))
		for _, k := range keys {
			m[k] = 1
		}
	}
}

func BenchmarkApplyPage100kOnePage(b *testing.B) {
	js := []byte(benchPage(100000))
	b.ReportAllocs()
	for b.Loop() {
		s := New()
		if _, err := s.ApplyPage(js, benchNow); err != nil {
			b.Fatal(err)
		}
	}
	_ = unsafe.Sizeof(0)
}
