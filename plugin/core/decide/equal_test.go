package decide

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestSameToken(t *testing.T) {
	base := strings.Repeat("abcdefghij", 23)
	assert.True(t, sameToken(base, strings.Clone(base)))
	assert.True(t, sameToken("", ""))
	assert.False(t, sameToken(base, base[:len(base)-1]))
	for i := 0; i < len(base); i++ {
		b := []byte(base)
		b[i] ^= 1
		assert.False(t, sameToken(base, string(b)), i)
	}
}
