package broker_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/seatbroker/seatbroker/broker"
	"github.com/seatbroker/seatbroker/broker/protocol"
	"github.com/seatbroker/seatbroker/internal/testredis"
)

func TestChangeOnOneNodeReachesWatchersOnAnother(t *testing.T) {
	t.Parallel()
	c := testredis.Client(t)
	cfg := fastConfig(testredis.Prefix(t))
	a := startBroker(t, c, cfg)
	b := startBroker(t, c, cfg)
	f := accountOn(t, a, setup{seats: 2})
	events, cancel, err := b.Watch(f.ctx, f.acct)
	require.NoError(t, err)
	defer cancel()
	u := f.user("ann", nil)
	g := f.mustOpen(u, "d1")
	_, err = a.EndSessions(f.ctx, f.owner, []string{g.Session.ID})
	require.NoError(t, err)
	deadline := time.After(time.Second)
	for {
		select {
		case ev := <-events:
			if ev.Type == broker.EventSession && ev.Session.ID == g.Session.ID && ev.Session.State == protocol.StateTerminating {
				require.Equal(t, "owner", ev.Session.EndedBy)
				require.Positive(t, ev.Session.SecondsLeft)
				return
			}
		case <-deadline:
			t.Fatal("the notice did not reach the other node within 1 s")
		}
	}
}

func TestWatchEndsWhenCancelled(t *testing.T) {
	t.Parallel()
	c := testredis.Client(t)
	b := startBroker(t, c, fastConfig(testredis.Prefix(t)))
	f := accountOn(t, b, setup{seats: 1})
	events, cancel, err := b.Watch(f.ctx, f.acct)
	require.NoError(t, err)
	cancel()
	cancel() // idempotent
	_, open := <-events
	require.False(t, open)
}
