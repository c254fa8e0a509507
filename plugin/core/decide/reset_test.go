package decide

import (
	"testing"

	"github.com/meshsession/meshsession/internal/resettest"
)

func TestResultResetsEveryField(t *testing.T) {
	e := &Engine{}
	resettest.Check(t, &e.out, func() { e.result() })
}

func TestRequestResetEmptiesEveryField(t *testing.T) {
	var r Request
	resettest.Check(t, &r, r.Reset)
}
