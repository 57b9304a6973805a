package rdb

import (
	"context"
	"testing"
	"time"

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

// What one call of the account code publishes: each changed session, and
// last a batch that ends the call; with no other events the last session
// travels inside that batch (one message fewer).
func TestCallPublishesItsSessionsThenEndsWithABatch(t *testing.T) {
	s, c := batchStore(t, map[string]int{"ann": 0, "bob": 0})
	ctx := context.Background()
	sub := c.Subscribe(ctx, s.keys.Channel("acme"))
	defer sub.Close()
	_, err := sub.Receive(ctx) // the subscription is confirmed
	require.NoError(t, err)
	msgs := sub.Channel()
	next := func() EventBatch {
		t.Helper()
		select {
		case m := <-msgs:
			b, err := s.keys.DecodeEvents(m.Channel, m.Payload)
			require.NoError(t, err, m.Payload)
			return b
		case <-time.After(2 * time.Second):
			t.Fatal("no event")
			return EventBatch{}
		}
	}
	sessionOf(t, runBatch(t, s, openOp("s1", "ann", "d1"), openOp("s2", "bob", "d1"))[0])
	b := next()
	require.False(t, b.End)
	require.Equal(t, "s1", b.Events[0].Session.ID)
	b = next()
	require.True(t, b.End, "the last session ends the call")
	require.Len(t, b.Events, 1)
	require.Equal(t, "session", b.Events[0].Type)
	require.Equal(t, "s2", b.Events[0].Session.ID)
	require.Equal(t, "active", b.Events[0].Session.State)

	// a call with another kind of event: its sessions alone, then the batch
	_, err = s.Block(ctx, "acme", "ann", true, "owner")
	require.NoError(t, err)
	b = next()
	require.False(t, b.End)
	require.Equal(t, "s1", b.Events[0].Session.ID)
	require.Equal(t, "terminating", b.Events[0].Session.State)
	b = next()
	require.True(t, b.End)
	require.Equal(t, "user", b.Events[0].Type)
}
