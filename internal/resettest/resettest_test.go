package resettest

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// recorder collects what Check reports.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

type sample struct {
	Name  string
	n     int
	at    time.Time
	err   error
	list  []byte
	keep  *int
	empty struct{}
}

func TestCheckFindsAForgottenField(t *testing.T) {
	var s sample
	r := &recorder{TB: t}
	Check(r, &s, func() { s.Name, s.n, s.at, s.err, s.keep = "", 0, time.Time{}, nil, nil }) // forgets list
	assert.Equal(t, []string{"resettest: resettest.sample.list is not reset (still [0])"}, r.errs)
}

func TestCheckPassesAWholeResetAndKeptFields(t *testing.T) {
	var s sample
	r := &recorder{TB: t}
	Check(r, &s, func() { s.Name, s.n, s.at, s.err, s.list = "", 0, time.Time{}, nil, nil }, "keep")
	assert.Empty(t, r.errs)
	assert.NotNil(t, s.keep, "a kept field is left as it was")
	assert.Zero(t, s.empty, "a field with no other value than zero is not checked")
}
