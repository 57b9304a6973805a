package rdb

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// ppuStore is batchStore with one prepaid seat, PPU on and 100 minutes.
func ppuStore(t *testing.T) *Store {
	t.Helper()
	s, _ := batchStore(t, map[string]int{"ann": 0, "bob": 0})
	setSeats(t, s, 1)
	r := runBatch(t, s, op("acme", opSettings, `{"ppu":"1"}`))[0]
	require.NoError(t, r.err)
	require.Equal(t, StatusOK, r.res.Status, string(r.res.Payload))
	_, _, err := s.TopUp(context.Background(), "acme", 100, "k1", "owner", "")
	require.NoError(t, err)
	return s
}

// A session granted on PPU starts its first minute at the grant, even when
// a later operation of the same call frees a seat and promotes it at that
// very instant (docs/design.md): the minute is billed, as it would be had
// the seat freed in the next call. The call publishes the session once, as
// it leaves it (prepaid), so its event says what happened: promoted at the
// instant it changed (its at), with one minute billed.
func TestGrantOnPPUPromotedInTheSameCallPaysItsFirstMinute(t *testing.T) {
	s := ppuStore(t)
	ctx := context.Background()
	sessionOf(t, runBatch(t, s, openOp("s-ann", "ann", "d1"))[0])
	sub := s.Subscribe(ctx, "acme")
	defer sub.Close()
	_, err := sub.Receive(ctx)
	require.NoError(t, err)

	rs := runOneCall(t, s, openOp("s-bob", "bob", "d1"), closeOp("s-ann", "ann"))
	bob := sessionOf(t, rs[0])
	require.Equal(t, "ended", sessionOf(t, rs[1]).State)
	require.Equal(t, "prepaid", bob.Kind, "ann's seat went to bob")
	require.Equal(t, bob.At, bob.Promoted)
	require.Equal(t, bob.Created, bob.Promoted, "promoted at the instant it opened")
	require.Equal(t, int64(1), bob.Billed)
	require.Zero(t, bob.PPUms, "no PPU time: a stretch of length 0")

	entries, total, err := s.Ledger(ctx, "acme", 0, -1)
	require.NoError(t, err)
	require.Equal(t, int64(2), total, "the top-up and bob's first minute")
	require.Equal(t, "minute", entries[1].Kind)
	require.Equal(t, "s-bob", entries[1].Session)
	require.Equal(t, int64(1), entries[1].Minute)
	require.Equal(t, bob.Created, entries[1].At)

	var seen *SessionRec
	for seen == nil {
		select {
		case m := <-sub.Channel():
			b, err := s.keys.DecodeEvents(m.Channel, m.Payload)
			require.NoError(t, err, m.Payload)
			for _, e := range b.Events {
				if e.Session != nil && e.Session.ID == "s-bob" {
					require.Nil(t, seen, "a call publishes a session once")
					seen = e.Session
				}
			}
		case <-time.After(2 * time.Second):
			t.Fatal("the call published no event for bob")
		}
	}
	require.Equal(t, bob, *seen, "the event is the session as the call left it")
}
