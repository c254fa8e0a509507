package storetest

import (
	"encoding/json"
	"testing"

	"github.com/meshsession/meshsession/sessionsvc/store"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func testSettings(t *testing.T, st store.Store) {
	doc, err := st.GetSettings(ctx())
	require.NoError(t, err)
	assert.Nil(t, doc)
	require.NoError(t, st.PutSettings(ctx(), json.RawMessage(`{"a":1}`)))
	require.NoError(t, st.PutSettings(ctx(), json.RawMessage(`{"a":2}`)))
	doc, err = st.GetSettings(ctx())
	require.NoError(t, err)
	assert.JSONEq(t, `{"a":2}`, string(doc))
	assert.Error(t, st.PutSettings(ctx(), json.RawMessage(`{`)))
}
