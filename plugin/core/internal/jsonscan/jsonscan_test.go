package jsonscan_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/tidwall/gjson"

	"github.com/meshsession/meshsession/plugin/core/internal/jsonscan"
)

func TestValid(t *testing.T) {
	good := []string{`{}`, `[]`, `0`, `-0.5e+10`, `"a\u00e9\n"`, ` {"a":[1,{"b":null},true,false]} `, `"é"`}
	bad := []string{``, ` `, `{`, `{"a"}`, `{"a":}`, `[1,]`, `01`, `1.`, `-`, `"\x"`, "\"\x01\"", `{"a":1}x`, `tru`, `{"a":1,}`, `"\u12g4"`, `{1:2}`}
	for _, s := range good {
		assert.True(t, jsonscan.Valid(s), s)
		assert.True(t, gjson.Valid(s), s)
	}
	for _, s := range bad {
		assert.False(t, jsonscan.Valid(s), s)
		assert.False(t, gjson.Valid(s), s)
	}
	deep := strings.Repeat("[", 100) + strings.Repeat("]", 100)
	assert.False(t, jsonscan.Valid(deep), "nesting bounded")
}

func TestWalk(t *testing.T) {
	p := jsonscan.New(`{"a":"x\"y","b":[1,2],"c":12.5}`)
	var got []string
	ok := p.Object(1, func(name string, esc bool) bool {
		kind, text, vesc, ok := p.Value(1)
		if vesc {
			text = jsonscan.Unescape(text)
		}
		got = append(got, name+"="+text+"/"+string('0'+byte(kind)))
		return ok
	})
	assert.True(t, ok)
	assert.True(t, p.End())
	assert.Equal(t, []string{`a=x"y/1`, "b=/4", "c=12.5/2"}, got)
}

func FuzzValid(f *testing.F) {
	for _, s := range []string{`{"a":[1,2,{"b":"c"}]}`, `[1e5,-0,"\u0041"]`, `{"a":01}`, `"\ud800"`, `nul`, `[1,2`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if strings.Count(s, "[")+strings.Count(s, "{") > jsonscan.MaxDepth-4 {
			return
		}
		if got, want := jsonscan.Valid(s), gjson.Valid(s); got != want {
			t.Fatalf("%q: jsonscan %v, gjson %v", s, got, want)
		}
	})
}
