package broker_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seatbroker/seatbroker/broker"
	"github.com/seatbroker/seatbroker/broker/protocol"
	"github.com/seatbroker/seatbroker/internal/testredis"
)

// ownRedis starts a redis-server of the test's own, which it may kill and
// restart, with the given persistence settings, and a broker node on it.
func ownRedis(t *testing.T, persistence ...string) (*testredis.Server, *fixture) {
	t.Helper()
	srv, err := testredis.StartWith(persistence...)
	require.NoError(t, err)
	t.Cleanup(srv.Stop)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { _ = c.Close() })
	f := newFixture(t, c, setup{seats: 1, ppu: true, cfg: func(cfg *broker.Config) {
		// the restart must not outlast a lease, nor a billed minute run
		// out the balance meanwhile
		cfg.Lease, cfg.Heartbeat, cfg.Minute = 20*time.Second, 5*time.Second, time.Hour
	}})
	return srv, f
}

// crash kills Redis as a crash would and starts it again from its files.
func crash(t *testing.T, srv *testredis.Server, f *fixture) {
	t.Helper()
	srv.Kill()
	require.NoError(t, srv.Restart())
	require.Eventually(t, func() bool { return f.b.Ping(f.ctx) == nil }, 5*time.Second, 20*time.Millisecond)
}

func fenceOf(t *testing.T, g protocol.Grant) int64 {
	t.Helper()
	n, err := strconv.ParseInt(g.Fence, 10, 64)
	require.NoError(t, err, "a fencing token is a decimal number")
	return n
}

// TestNothingAcknowledgedIsLostWhenRedisCrashesWithAppendOnlyAlways:
// README, "Minutes are money": with appendonly yes and appendfsync always
// a crash of Redis loses nothing acknowledged. Sessions, seats, the PPU
// ledger and balance and the fencing tokens are as they were, and the
// desktop clients' sessions go on on the same seats.
func TestNothingAcknowledgedIsLostWhenRedisCrashesWithAppendOnlyAlways(t *testing.T) {
	t.Parallel()
	srv, f := ownRedis(t, "--save", "", "--appendonly", "yes", "--appendfsync", "always")
	f.topUp(100)
	ann, bob := f.user("ann", nil), f.user("bob", nil)
	ga := f.mustOpen(ann, "d1")
	gb := f.mustOpen(bob, "d1") // on PPU: its first minute is billed
	require.Equal(t, protocol.KindPPU, gb.Session.Kind)
	code := f.openCode(ann, "d1") // shares ann's seat
	before := f.overview()
	rec, err := f.b.Reconcile(f.ctx, f.owner)
	require.NoError(t, err)

	crash(t, srv, f)

	assert.Equal(t, before.InUse, f.overview().InUse)
	assert.Equal(t, before.PPUBalance, f.overview().PPUBalance)
	assert.Equal(t, before.PPUSessions, f.overview().PPUSessions)
	after, err := f.b.Reconcile(f.ctx, f.owner)
	require.NoError(t, err)
	assert.Equal(t, rec, after)
	assert.True(t, after.OK)
	assert.Equal(t, protocol.StateActive, f.state(ga.Session.ID).State)
	assert.Equal(t, protocol.StateActive, f.state(gb.Session.ID).State)
	assert.Equal(t, protocol.StateStandby, f.state(code.Session.ID).State)
	// the holders renew with the tokens they hold: same sessions, same seats
	res, err := f.b.Renew(f.ctx, f.acct, ann.UserID, []broker.SessionRef{{ID: ga.Session.ID, Fence: ga.Fence}})
	require.NoError(t, err)
	require.NoError(t, res[0].Err)
	res, err = f.b.Renew(f.ctx, f.acct, bob.UserID, []broker.SessionRef{{ID: gb.Session.ID, Fence: gb.Fence}})
	require.NoError(t, err)
	require.NoError(t, res[0].Err)
	// and the next grant's token is greater than every one before
	g := f.mustOpen(ann, "d2")
	assert.Greater(t, fenceOf(t, g), max(fenceOf(t, ga), fenceOf(t, gb), fenceOf(t, code)))
}

// TestAFencingTokenIsGreaterThanAnyGrantedAfterRedisLostItsLatestWrites:
// docs/design.md, "Fencing": a Redis that comes back from an older
// snapshot has an older stored counter, but never hands out a token that
// is not greater than one it granted before: tokens never fall below
// Redis's clock. A holder of a grant the snapshot lost cannot pass for
// the holder of a new one.
func TestAFencingTokenIsGreaterThanAnyGrantedAfterRedisLostItsLatestWrites(t *testing.T) {
	t.Parallel()
	srv, f := ownRedis(t, "--save", "", "--appendonly", "no")
	f.topUp(100) // bob runs on PPU
	ann, bob := f.user("ann", nil), f.user("bob", nil)
	g1 := f.mustOpen(ann, "d1")
	c := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer c.Close()
	require.NoError(t, c.Save(context.Background()).Err())
	// granted after the snapshot, then lost with it
	var most int64
	for range 20 {
		s, err := f.b.Pause(f.ctx, f.acct, ann.UserID, g1.Session.ID, "")
		require.NoError(t, err)
		require.Equal(t, protocol.StatePaused, s.State)
		g, err := f.b.Resume(f.ctx, f.acct, ann.UserID, g1.Session.ID)
		require.NoError(t, err)
		most = max(most, fenceOf(t, g))
	}
	lost := f.mustOpen(bob, "d9")
	most = max(most, fenceOf(t, lost))

	crash(t, srv, f)

	// the snapshot's state: the session as first granted, bob's unknown
	res, err := f.b.Renew(f.ctx, f.acct, ann.UserID, []broker.SessionRef{{ID: g1.Session.ID, Fence: g1.Fence}})
	require.NoError(t, err)
	require.NoError(t, res[0].Err)
	res, err = f.b.Renew(f.ctx, f.acct, bob.UserID, []broker.SessionRef{{ID: lost.Session.ID, Fence: lost.Fence}})
	require.NoError(t, err)
	assert.ErrorIs(t, res[0].Err, broker.ErrNotFound)
	// every new grant's token is greater than any granted before the crash
	s, err := f.b.Pause(f.ctx, f.acct, ann.UserID, g1.Session.ID, "")
	require.NoError(t, err)
	require.Equal(t, protocol.StatePaused, s.State)
	g, err := f.b.Resume(f.ctx, f.acct, ann.UserID, g1.Session.ID)
	require.NoError(t, err)
	assert.Greater(t, fenceOf(t, g), most)
	assert.Greater(t, fenceOf(t, f.mustOpen(bob, "d2")), most)
}
