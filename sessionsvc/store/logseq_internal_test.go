package store

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestSeqGapsRoundTripAndBound(t *testing.T) {
	var gaps []seqGap
	for i := int64(0); i < maxSeqGaps+5; i++ {
		gaps = addSeqGap(gaps, seqGap{lo: 10 * i, hi: 10*i + 5})
	}
	assert.Len(t, gaps, maxSeqGaps)
	assert.Equal(t, seqGap{lo: 50, hi: 55}, gaps[0], "the oldest go")
	assert.Equal(t, gaps, parseSeqGaps(formatSeqGaps(gaps)))
	assert.Equal(t, []seqGap{{1, 9}}, parseSeqGaps("junk 1:9 5:5 x:3 7:2"), "what does not parse is left out")
	assert.Empty(t, parseSeqGaps(""))

	s := &sqlStore{seqGaps: []seqGap{{lo: 100, hi: 200}}}
	for c, want := range map[int64]bool{99: false, 100: false, 101: true, 200: true, 201: false} {
		assert.Equal(t, want, s.inSeqGap(c), "cursor %d", c)
	}
}
