package broker_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seatbroker/seatbroker/broker"
	"github.com/seatbroker/seatbroker/broker/protocol"
	"github.com/seatbroker/seatbroker/internal/testredis"
)

// TestWholeProductOnRedisCluster runs what is not a seat script on a
// three-master Redis Cluster, with two nodes and accounts over several
// slots: sign-in, tokens and their revocation, rate limits, join by code
// and rejoin secrets, the reaper, PPU billing and the ledger, events from
// another node, End Selected Sessions, and readiness.
func TestWholeProductOnRedisCluster(t *testing.T) {
	t.Parallel()
	cl := testredis.StartCluster(t)
	cfg := fastConfig(testredis.Prefix(t))
	a := startBroker(t, cl.Client(t), cfg)
	b := startBroker(t, cl.Client(t), cfg)
	ctx := context.Background()
	require.NoError(t, a.Ping(ctx))
	require.Eventually(t, func() bool { return a.Ready() && b.Ready() }, 3*time.Second, 20*time.Millisecond)

	for i := range 4 {
		f := accountOn(t, a, setup{seats: 1, ppu: true})
		require.NoError(t, a.SetPassword(ctx, f.owner, f.owner.UserID, "password-123", ""))

		// sign-in on one node, authenticate on the other
		tok, err := a.SignIn(ctx, broker.Credentials{Account: f.acct, Name: "owner", Password: "password-123"}, "10.1.0.1", broker.TokenWeb, 0)
		require.NoError(t, err, "account %d", i)
		p, err := b.Authenticate(ctx, tok.Token, broker.TokenWeb)
		require.NoError(t, err)
		assert.Equal(t, f.owner.UserID, p.UserID)
		_, err = a.SignIn(ctx, broker.Credentials{Account: f.acct, Name: "owner", Password: "wrong-password"}, "10.1.0.1", broker.TokenWeb, 0)
		assert.ErrorIs(t, err, broker.ErrUnauthorized)
		key, err := a.IssueToken(ctx, p, time.Hour, "ci")
		require.NoError(t, err)

		// revocation, seen by the other node's watchers
		events, cancel, err := b.Watch(ctx, f.acct)
		require.NoError(t, err)
		require.NoError(t, a.Revoke(ctx, p, key.Token))
		_, err = b.Authenticate(ctx, key.Token, broker.TokenClient)
		assert.ErrorIs(t, err, broker.ErrUnauthorized)
		waitTokens(t, events, f.owner.UserID)
		n, err := a.RevokeUserTokens(ctx, p, p.UserID)
		require.NoError(t, err)
		assert.Equal(t, 1, n)
		_, err = b.Authenticate(ctx, tok.Token, broker.TokenWeb)
		assert.ErrorIs(t, err, broker.ErrUnauthorized)

		// join by code, the wrong-code limit, and a rejoin secret
		u := f.user("ann", nil)
		g := f.openCode(u, "d1")
		for range cfg.JoinRate {
			_, _, err = b.Join(ctx, "000000000"[:cfg.CodeDigits], "10.2.0."+f.acct)
			assert.ErrorIs(t, err, broker.ErrNotFound)
		}
		_, _, err = b.Join(ctx, g.Session.Code, "10.2.0."+f.acct)
		var rl *broker.RateLimitedError
		assert.ErrorAs(t, err, &rl, "the source used up its wrong codes")
		s, acct, err := b.Join(ctx, g.Session.Code, "10.3.0.1")
		require.NoError(t, err)
		assert.Equal(t, f.acct, acct)
		assert.Equal(t, protocol.StateActive, s.State)
		secret, err := b.IssueRejoin(ctx, acct, s.ID)
		require.NoError(t, err)
		s2, acct2, err := a.Rejoin(ctx, s.ID, secret)
		require.NoError(t, err)
		assert.Equal(t, f.acct, acct2)
		assert.Equal(t, s.ID, s2.ID)

		// PPU billing by the reaper, and the ledger
		f.topUp(10)
		ppu := f.mustOpen(f.user("bob", nil), "d1")
		require.Equal(t, protocol.KindPPU, ppu.Session.Kind)
		require.Eventually(t, func() bool {
			l, err := b.SessionLedger(ctx, f.owner, ppu.Session.ID)
			return err == nil && len(l) >= 1
		}, 3*time.Second, 20*time.Millisecond)
		entries, total, err := b.Ledger(ctx, f.owner, 0, 100)
		require.NoError(t, err)
		assert.EqualValues(t, len(entries), total)

		// End Selected Sessions from the other node; the reaper ends it
		res, err := b.EndSessions(ctx, f.owner, []string{g.Session.ID, ppu.Session.ID})
		require.NoError(t, err)
		require.True(t, res[0].OK)
		require.True(t, res[1].OK)
		waitEvent(t, events, g.Session.ID, protocol.StateTerminating)
		f.waitState(g.Session.ID, protocol.StateEnded, 2*time.Second)
		f.waitState(ppu.Session.ID, protocol.StateEnded, 2*time.Second)
		cancel()
	}
}

func waitTokens(t *testing.T, events <-chan broker.Event, uid string) {
	t.Helper()
	timeout := time.After(2 * time.Second)
	for {
		select {
		case ev := <-events:
			if ev.Type == broker.EventTokens && ev.UserID == uid {
				return
			}
		case <-timeout:
			t.Fatalf("no tokens event for %s within 2 s", uid)
		}
	}
}
