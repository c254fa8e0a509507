package protostruct_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/meshsession/meshsession/plugin/core/protostruct"
)

func TestToJSON(t *testing.T) {
	s, err := structpb.NewStruct(map[string]any{
		"sub":  "42",
		"id":   42,
		"iat":  1700000000,
		"frac": 1.5,
		"ok":   true,
		"no":   false,
		"nil":  nil,
		"aud":  []any{"a", 1, map[string]any{"x": "y"}},
		"user": map[string]any{"name": "é \"q\""},
	})
	require.NoError(t, err)
	b, err := proto.Marshal(s)
	require.NoError(t, err)
	js, err := protostruct.ToJSON(b)
	require.NoError(t, err)
	assert.JSONEq(t, `{"sub":"42","id":42,"iat":1700000000,"frac":1.5,"ok":true,"no":false,"nil":null,
		"aud":["a",1,{"x":"y"}],"user":{"name":"é \"q\""}}`, js)

	empty, err := protostruct.ToJSON(nil)
	require.NoError(t, err)
	assert.Equal(t, "{}", empty)

	passthrough, err := protostruct.ToJSON([]byte(`{"sid":"x"}`))
	require.NoError(t, err)
	assert.Equal(t, `{"sid":"x"}`, passthrough)
}

func TestMalformed(t *testing.T) {
	for _, b := range [][]byte{
		{0x0a},                         // truncated length
		{0x0a, 0x05, 0x01},             // length past end
		{0x00},                         // field 0
		{0x0b},                         // group wire type
		{0x0a, 0x02, 0x12, 0x00, 0x0a}, // trailing garbage
		[]byte(`{"a":`),
	} {
		_, err := protostruct.ToJSON(b)
		assert.ErrorIs(t, err, protostruct.ErrMalformed, "%x", b)
	}
	// deep nesting is bounded
	v := structpb.NewStructValue(&structpb.Struct{Fields: map[string]*structpb.Value{}})
	for i := 0; i < 40; i++ {
		v = structpb.NewStructValue(&structpb.Struct{Fields: map[string]*structpb.Value{"a": v}})
	}
	b, err := proto.Marshal(v.GetStructValue())
	require.NoError(t, err)
	_, err = protostruct.ToJSON(b)
	assert.ErrorIs(t, err, protostruct.ErrMalformed)
}

func FuzzToJSON(f *testing.F) {
	s, _ := structpb.NewStruct(map[string]any{"sid": "a", "n": 1, "l": []any{true, nil}})
	b, _ := proto.Marshal(s)
	f.Add(b)
	f.Add([]byte{0x0a, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		js, err := protostruct.ToJSON(b)
		if err != nil {
			return
		}
		if !validJSON(js) {
			t.Fatalf("invalid JSON %q from %x", js, b)
		}
	})
}
