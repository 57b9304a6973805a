package rdb

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// A channel carries sessions as their JSON alone and other events as
// batches; the batch ends what one call published, and the account is the
// channel's.
func TestDecodeEventsReadsBothMessagesOfAChannel(t *testing.T) {
	k := NewKeys("")
	ch := k.Channel("acme")

	b, err := k.DecodeEvents(ch, `{"id":"s1","user":"u1","state":"active","at":"1764465213123"}`)
	require.NoError(t, err)
	require.Equal(t, "acme", b.Account)
	require.False(t, b.End)
	require.Len(t, b.Events, 1)
	require.Equal(t, "session", b.Events[0].Type)
	require.Equal(t, int64(1764465213123), b.Events[0].Session.At)

	b, err = k.DecodeEvents(ch, `{"account":"acme","events":[{"type":"promoted","seat":"u1|d1"}]}`)
	require.NoError(t, err)
	require.True(t, b.End)
	require.Equal(t, "promoted", b.Events[0].Type)

	b, err = k.DecodeEvents(ch, `{"account":"acme","events":{}}`)
	require.NoError(t, err, "a call with session events only ends with an empty batch")
	require.True(t, b.End)
	require.Empty(t, b.Events)

	_, err = k.DecodeEvents(ch, `{"account":"other","events":{}}`)
	require.ErrorIs(t, err, ErrUnexpectedReply, "another account's batch on this channel")
	_, err = k.DecodeEvents("sb:v3:elsewhere", `{"id":"s1"}`)
	require.ErrorIs(t, err, ErrUnexpectedReply, "not an account channel")
}
