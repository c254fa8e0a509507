package testenv_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/internal/testenv"
)

func TestSyncBufferConcurrentWrites(t *testing.T) {
	var b testenv.SyncBuffer
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				_, _ = fmt.Fprintln(&b, "line")
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, 800, strings.Count(b.String(), "line\n"))
}

func TestSyncBufferMaxKeepsTheTail(t *testing.T) {
	b := testenv.SyncBuffer{Max: 100}
	for i := 0; i < 50; i++ {
		_, _ = fmt.Fprintf(&b, "%02d\n", i)
	}
	assert.LessOrEqual(t, len(b.String()), 100)
	assert.True(t, strings.HasSuffix(b.String(), "48\n49\n"), b.String())
	assert.Equal(t, "47\n48\n49", b.Tail(3))
	var small testenv.SyncBuffer
	_, _ = small.Write([]byte("a\nb\n"))
	assert.Equal(t, "a\nb", small.Tail(5), "fewer lines than asked")
}

func TestRequired(t *testing.T) {
	for _, tc := range []struct {
		val  string
		want bool
	}{{"", false}, {"0", false}, {"false", false}, {"1", true}, {"true", true}} {
		t.Setenv("CI", "")
		t.Setenv("TESTENV_X", tc.val)
		assert.Equal(t, tc.want, testenv.Required("TESTENV_X"), "TESTENV_X=%q", tc.val)
	}
	t.Setenv("TESTENV_X", "")
	t.Setenv("CI", "true")
	assert.True(t, testenv.Required("TESTENV_X"), "CI always counts")
}

func TestModuleRoot(t *testing.T) {
	root, err := testenv.ModuleRoot()
	require.NoError(t, err)
	assert.FileExists(t, root+"/go.mod")
	assert.DirExists(t, root+"/internal/testenv")
}

func TestClock(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	c := testenv.NewClock(start)
	assert.Equal(t, start, c.Now())
	c.Add(90 * time.Second)
	assert.Equal(t, start.Add(90*time.Second), c.Now())
}

func TestPositiveInt(t *testing.T) {
	const name = "MESHSESSION_TESTENV_POSITIVE_INT"
	for _, tc := range []struct {
		val  string
		want int
	}{{"", 7}, {"12", 12}, {"0", 7}, {"-3", 7}, {"x", 7}, {"1.5", 7}} {
		t.Setenv(name, tc.val)
		assert.Equal(t, tc.want, testenv.PositiveInt(name, 7), "%q", tc.val)
	}
}

func TestGetenv(t *testing.T) {
	get := testenv.Getenv(map[string]string{"A": "1", "B": ""})
	assert.Equal(t, "1", get("A"))
	assert.Empty(t, get("B"))
	assert.Empty(t, get("C"))
	assert.Empty(t, testenv.Getenv(nil)("A"))
}

// fatalTB records the first Fatal instead of stopping the test.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper()                           {}
func (f *fatalTB) Fatal(args ...any)                 { f.msg = fmt.Sprint(args...) }
func (f *fatalTB) Fatalf(format string, args ...any) { f.msg = fmt.Sprintf(format, args...) }

func TestReturned(t *testing.T) {
	for _, tc := range []struct {
		name string
		send func(chan error)
		want string
	}{
		{"nil", func(c chan error) { c <- nil }, ""},
		{"error", func(c chan error) { c <- fmt.Errorf("boom") }, "returned boom"},
		{"never", func(chan error) {}, "did not stop"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			done := make(chan error, 1)
			tc.send(done)
			tb := &fatalTB{TB: t}
			testenv.Returned(tb, done, 10*time.Millisecond, "did not stop")
			assert.Equal(t, tc.want, tb.msg)
		})
	}
}
