package broker_test

import (
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seatbroker/seatbroker/broker"
	"github.com/seatbroker/seatbroker/broker/protocol"
)

// Liveness and fencing (SPEC.md, "Liveness").

func shortLease(c *broker.Config) {
	c.Lease = 500 * time.Millisecond
	c.Heartbeat = 100 * time.Millisecond
}

func TestVanishedClientLosesSeatWithinOneSecondOfLease(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c redis.UniversalClient) {
		f := newFixture(t, c, setup{seats: 1, cfg: shortLease})
		u := f.user("ann", nil)
		g := f.mustOpen(u, "d1")
		leaseEnd := time.Now().Add(f.b.Config().Lease)
		s := f.waitState(g.Session.ID, protocol.StateEnded, f.b.Config().Lease+time.Second)
		assert.WithinDuration(t, leaseEnd, time.Now(), time.Second)
		assert.Equal(t, protocol.ReasonLeaseLost, s.Reason)
		assert.Equal(t, int64(0), f.overview().InUse)
	})
}

func TestHeartbeatKeepsSessionAndSeat(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c redis.UniversalClient) {
		f := newFixture(t, c, setup{seats: 1, cfg: shortLease})
		u := f.user("ann", nil)
		g := f.mustOpen(u, "d1")
		for range 10 { // 1 s: twice the lease
			res, err := f.b.Renew(f.ctx, f.acct, u.UserID, []broker.SessionRef{{ID: g.Session.ID, Fence: g.Fence}})
			require.NoError(t, err)
			require.Len(t, res, 1)
			require.NoError(t, res[0].Err)
			time.Sleep(100 * time.Millisecond)
		}
		assert.Equal(t, protocol.StateActive, f.state(g.Session.ID).State)
		assert.Equal(t, int64(1), f.overview().InUse)
	})
}

func TestReconnectWithinLeaseKeepsSameSeat(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c redis.UniversalClient) {
		f := newFixture(t, c, setup{seats: 1, cfg: shortLease})
		u := f.user("ann", nil)
		g := f.mustOpen(u, "d1")
		time.Sleep(300 * time.Millisecond) // the client is away, within its lease
		// it comes back (maybe on another node) with its id and token
		other := startBroker(t, c, f.b.Config())
		res, err := other.Renew(f.ctx, f.acct, u.UserID, []broker.SessionRef{{ID: g.Session.ID, Fence: g.Fence}})
		require.NoError(t, err)
		require.NoError(t, res[0].Err)
		assert.Equal(t, protocol.StateActive, res[0].Session.State)
		assert.Equal(t, int64(1), f.overview().InUse, "a reconnect never takes a second license")
	})
}

func TestStaleFencingTokenIsRefused(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c redis.UniversalClient) {
		f := newFixture(t, c, setup{seats: 1})
		u := f.user("ann", nil)
		g := f.mustOpen(u, "d1")
		_, err := f.b.Pause(f.ctx, f.acct, u.UserID, g.Session.ID)
		require.NoError(t, err)
		g2, err := f.b.Resume(f.ctx, f.acct, u.UserID, g.Session.ID)
		require.NoError(t, err)
		assert.Greater(t, g2.Fence, g.Fence)
		before := f.snapshot()
		res, err := f.b.Renew(f.ctx, f.acct, u.UserID, []broker.SessionRef{{ID: g.Session.ID, Fence: g.Fence}})
		require.NoError(t, err)
		var stale *broker.StaleError
		assert.ErrorAs(t, res[0].Err, &stale)
		assert.ErrorIs(t, res[0].Err, broker.ErrForbidden)
		assert.Equal(t, before, f.snapshot())
	})
}

func TestFencingTokensOnlyGrowEvenAfterLostWrites(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c redis.UniversalClient) {
		f := newFixture(t, c, setup{seats: 10})
		u := f.user("ann", nil)
		g1 := f.mustOpen(u, "d1")
		// a failover that lost the last writes: the stored counter goes back
		require.NoError(t, c.HSet(f.ctx, f.b.Config().Prefix+":{"+f.acct+"}:acct", "fence", "0").Err())
		g2 := f.mustOpen(u, "d2")
		assert.Greater(t, len(g2.Fence), 0)
		assert.Greater(t, g2.Fence, g1.Fence)
	})
}

func TestStandbyCodeExpires(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c redis.UniversalClient) {
		f := newFixture(t, c, setup{seats: 1})
		u := f.user("ann", nil)
		g := f.openCode(u, "d1")
		s := f.waitState(g.Session.ID, protocol.StateEnded, f.b.Config().Standby+time.Second)
		assert.Equal(t, protocol.ReasonExpired, s.Reason)
		assert.Equal(t, int64(0), f.overview().InUse)
		_, _, err := f.b.Join(f.ctx, g.Session.Code, "10.0.0.1")
		assert.ErrorIs(t, err, broker.ErrNotFound)
	})
}

func TestPausedSessionExpires(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c redis.UniversalClient) {
		f := newFixture(t, c, setup{seats: 1})
		u := f.user("ann", nil)
		g := f.mustOpen(u, "d1")
		_, err := f.b.Pause(f.ctx, f.acct, u.UserID, g.Session.ID)
		require.NoError(t, err)
		s, err := f.b.OwnSession(f.ctx, f.acct, u.UserID, g.Session.ID)
		require.NoError(t, err)
		assert.Equal(t, protocol.StatePaused, s.State)
		require.Eventually(t, func() bool {
			s, err = f.b.OwnSession(f.ctx, f.acct, u.UserID, g.Session.ID)
			return err == nil && s.State == protocol.StateEnded
		}, f.b.Config().Paused+time.Second, 20*time.Millisecond)
		assert.Equal(t, protocol.ReasonExpired, s.Reason)
	})
}

func TestEndedSessionIsForgottenAfterRetention(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c redis.UniversalClient) {
		f := newFixture(t, c, setup{seats: 1, cfg: func(c *broker.Config) { c.Retention = 300 * time.Millisecond }})
		u := f.user("ann", nil)
		g := f.mustOpen(u, "d1")
		f.close(u, g.Session.ID)
		require.Eventually(t, func() bool {
			_, err := f.b.OwnSession(f.ctx, f.acct, u.UserID, g.Session.ID)
			return errors.Is(err, broker.ErrNotFound)
		}, 2*time.Second, 20*time.Millisecond)
	})
}

// TestTimersSurviveANodeDyingBeforeFilingItsAccount: a node that dies after
// a script but before filing the account in the global timer index is
// covered by the sweep, which refiles every account from its own timers.
func TestTimersSurviveANodeDyingBeforeFilingItsAccount(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c redis.UniversalClient) {
		f := newFixture(t, c, setup{seats: 1, cfg: func(c *broker.Config) {
			c.SweepInterval = 300 * time.Millisecond
			shortLease(c)
		}})
		g := f.mustOpen(f.user("ann", nil), "d1")
		require.NoError(t, c.Del(f.ctx, f.b.Config().Prefix+":due").Err()) // the lost filing
		s := f.waitState(g.Session.ID, protocol.StateEnded, f.b.Config().Lease+f.b.Config().SweepInterval+time.Second)
		assert.Equal(t, protocol.ReasonLeaseLost, s.Reason)
	})
}

// TestASessionOpenedDuringAReapPassLosesItsSeatOnTime: SPEC.md invariant 5
// with every node alive. A client opens a session, and vanishes, while the
// reaper is between firing the account's due timers and refiling the
// account in the global timer index. The open files the lease in the index
// earlier-only (a no-op: the index still holds the timer the reaper just
// fired); the reaper's refiling must not then bury the lease under the
// account's next timer as it was before the open (an ended session's
// retention, 10 min on), which would leave it to the sweep (10 s).
func TestASessionOpenedDuringAReapPassLosesItsSeatOnTime(t *testing.T) {
	cfg := broker.DefaultConfig()
	cfg.Prefix = testPrefix(t)
	shortLease(&cfg)
	cfg.Standby = 300 * time.Millisecond
	cfg.ReapInterval = 50 * time.Millisecond
	// the sweep and the retention keep their defaults (10 s, 10 min)
	b, duringAReap := brokerHeldInAReap(t, cfg)
	f := accountOn(t, b, setup{seats: 5})
	ann := f.user("ann", nil)
	f.openCode(ann, "d1") // standby: its timer falls due in 300 ms

	var g protocol.Grant
	var err error
	var leaseEnd time.Time
	duringAReap(func() {
		g, err = f.open(ann, "d2") // and no heartbeat
		leaseEnd = time.Now().Add(cfg.Lease)
	})
	require.NoError(t, err)
	s := f.waitState(g.Session.ID, protocol.StateEnded, time.Until(leaseEnd)+time.Second)
	assert.Equal(t, protocol.ReasonLeaseLost, s.Reason)
	assert.Equal(t, int64(0), f.overview().InUse)
}
