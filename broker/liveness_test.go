package broker_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seatbroker/seatbroker/broker"
	"github.com/seatbroker/seatbroker/broker/protocol"
	"github.com/seatbroker/seatbroker/client"
	"github.com/seatbroker/seatbroker/internal/testredis"
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

// SPEC.md, Liveness: "a renewal or release with a stale token is
// refused". A heartbeat, and a holder's pause and close (releases), with a
// replaced token are refused and change nothing. The user acting on its
// own session through the REST API holds no lease and passes no token
// (docs/design.md, Fencing).
func TestARenewalOrReleaseWithAStaleFencingTokenIsRefused(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c redis.UniversalClient) {
		f := newFixture(t, c, setup{seats: 1})
		u := f.user("ann", nil)
		g := f.mustOpen(u, "d1")
		_, err := f.b.Pause(f.ctx, f.acct, u.UserID, g.Session.ID, g.Fence)
		require.NoError(t, err)
		g2, err := f.b.Resume(f.ctx, f.acct, u.UserID, g.Session.ID)
		require.NoError(t, err)
		assert.Greater(t, g2.Fence, g.Fence)
		before := f.snapshot()
		var stale *broker.StaleError
		res, err := f.b.Renew(f.ctx, f.acct, u.UserID, []broker.SessionRef{{ID: g.Session.ID, Fence: g.Fence}})
		require.NoError(t, err)
		assert.ErrorAs(t, res[0].Err, &stale)
		assert.ErrorIs(t, res[0].Err, broker.ErrForbidden)
		_, err = f.b.Pause(f.ctx, f.acct, u.UserID, g.Session.ID, g.Fence)
		assert.ErrorAs(t, err, &stale)
		assert.ErrorIs(t, err, broker.ErrForbidden)
		_, err = f.b.CloseSession(f.ctx, f.acct, u.UserID, u.Name, g.Session.ID, g.Fence)
		assert.ErrorAs(t, err, &stale)
		assert.Equal(t, before, f.snapshot())
		// the user, with no token (REST), and the holder, with the current one
		s, err := f.b.Pause(f.ctx, f.acct, u.UserID, g.Session.ID, "")
		require.NoError(t, err)
		assert.Equal(t, protocol.StatePaused, s.State)
		s, err = f.b.CloseSession(f.ctx, f.acct, u.UserID, u.Name, g.Session.ID, g2.Fence)
		require.NoError(t, err)
		assert.Equal(t, protocol.StateEnded, s.State)
		assert.Equal(t, protocol.ReasonClosed, s.Reason)
	})
}

func TestFencingTokensOnlyGrowEvenAfterLostWrites(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c redis.UniversalClient) {
		f := newFixture(t, c, setup{seats: 10})
		u := f.user("ann", nil)
		g1 := f.mustOpen(u, "d1")
		// a failover that lost the last writes: the stored counter goes back
		// (and the stamp goes, as for any change made outside the account
		// code: else the account code acts on the counter it mirrored, and
		// this tested nothing on a real Redis)
		key := f.b.Config().Prefix + ":{" + f.acct + "}:acct"
		require.NoError(t, c.HSet(f.ctx, key, "fence", "0").Err())
		require.NoError(t, c.HDel(f.ctx, key, "stamp").Err())
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
		_, err := f.b.Pause(f.ctx, f.acct, u.UserID, g.Session.ID, g.Fence)
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

// staleHolder sets up a session whose grant was replaced: connection a
// opened it (token T1); connection b took it back with T1 (a reconnect),
// paused and resumed it, and holds the current token T2. a still holds T1.
func staleHolder(t *testing.T) (f *fixture, a, b *client.Client, sid string) {
	f = onRedis(t, setup{seats: 2, cfg: func(c *broker.Config) {
		c.Heartbeat = 10 * time.Second // no heartbeat of a in between
		c.Lease = 30 * time.Second
		c.Paused = 30 * time.Second
	}})
	ann := f.user("ann", nil)
	tok, err := f.b.IssueToken(f.ctx, ann, time.Hour, "test")
	require.NoError(t, err)
	url := wsNode(t, f)
	a = wsDial(t, url, client.Options{Token: tok.Token, DeviceID: "d1", NoReconnect: true})
	g1, err := a.Open(f.ctx)
	require.NoError(t, err)
	sid = g1.Session.ID
	b = wsDial(t, url, client.Options{Token: tok.Token, DeviceID: "d1", NoReconnect: true,
		Sessions: []protocol.SessionRef{{ID: sid, Fence: g1.Fence}}})
	_, err = b.Pause(f.ctx, sid)
	require.NoError(t, err)
	g2, err := b.Resume(f.ctx, sid)
	require.NoError(t, err)
	require.NotEqual(t, g1.Fence, g2.Fence)
	// the old token is stale now: a renewal with it is refused
	rr, err := f.b.Renew(f.ctx, f.acct, ann.UserID, []broker.SessionRef{{ID: sid, Fence: g1.Fence}})
	require.NoError(t, err)
	require.ErrorIs(t, rr[0].Err, broker.ErrForbidden)
	return f, a, b, sid
}

// SPEC.md, Liveness: "a renewal or release with a stale token is refused"
// (docs/design.md, Fencing). The holder of the replaced grant may not
// close the session out from under the current holder.
func TestAReleaseWithAStaleFencingTokenIsRefused(t *testing.T) {
	f, a, _, sid := staleHolder(t)
	_, err := a.CloseSession(f.ctx, sid)
	assert.Equal(t, protocol.CodeForbidden, client.CodeOf(err), "a release with a stale token is refused")
	assert.Equal(t, protocol.StateActive, f.state(sid).State, "the current holder keeps its session")
}

// The same with pause, which releases the seat: the stale holder may not
// pause the session the current holder runs.
func TestAPauseWithAStaleFencingTokenIsRefused(t *testing.T) {
	f, a, _, sid := staleHolder(t)
	_, err := a.Pause(f.ctx, sid)
	assert.Equal(t, protocol.CodeForbidden, client.CodeOf(err), "a release with a stale token is refused")
	assert.Equal(t, int64(1), f.overview().InUse, "the current holder keeps its seat")
}

// SPEC.md, Liveness: a client that vanishes loses its sessions (lease_lost)
// and its seat when the lease runs out; only a reconnect before that keeps
// them. A call fires at most 100 due timers before it acts (catch_up's
// limit; the reaper does the rest). With more than 100 leases run out and
// the reaper not yet round (a mass disconnect: the reaper fires 500 per
// account per pass), a heartbeat for a session whose lease ran out still
// finds it ended: the call fires that session's own timer first
// (docs/design.md, Changes).
func TestAHeartbeatAfterTheLeaseRanOutDoesNotReviveTheSessionWhenManyTimersAreDue(t *testing.T) {
	c := testredis.Client(t)
	cfg := fastConfig(testPrefix(t))
	cfg.Lease = 2 * time.Second
	cfg.Heartbeat = time.Second
	b, err := broker.New(c, cfg, nil) // a node whose reaper is not running yet
	require.NoError(t, err)
	t.Cleanup(b.Close)
	f := accountOn(t, b, setup{seats: 500})
	ann := f.user("ann", nil)
	others := f.user("others", nil) // (a user holds at most 100 seat keys)
	for i := range 100 {
		f.mustOpen(others, "d"+strings.Repeat("x", i))
	}
	// the last lease runs out after the other 100 (not in the same
	// millisecond, where timers fire in no set order): the first call's
	// catch-up does not reach it
	time.Sleep(5 * time.Millisecond)
	last := f.mustOpen(ann, "dlast")
	time.Sleep(cfg.Lease + 300*time.Millisecond) // every lease ran out
	res, err := f.b.Renew(f.ctx, f.acct, ann.UserID, []broker.SessionRef{{ID: last.Session.ID, Fence: last.Fence}})
	require.NoError(t, err)
	if res[0].Err == nil {
		assert.Equal(t, protocol.StateEnded, res[0].Session.State, "its lease ran out before the heartbeat")
	}
	// and with every timer fired (a few more calls catch up with whatever
	// is left), no seat is held
	o := f.overview()
	for i := 0; o.InUse > 0 && i < 3; i++ {
		_, err = f.b.Renew(f.ctx, f.acct, ann.UserID, []broker.SessionRef{{ID: last.Session.ID, Fence: last.Fence}})
		require.NoError(t, err)
		o = f.overview()
	}
	assert.Equal(t, protocol.StateEnded, f.state(last.Session.ID).State)
	assert.Equal(t, int64(0), o.InUse, "every lease ran out: no seat is held")
}

// The same for every operation that names a session: with more timers due
// than a call fires, each finds its session as it is at this instant. A
// close finds it ended by its lease, a join finds its code expired, a pause
// finds it ended, a resume finds its paused time run out.
func TestOperationsFindANamedSessionAsItIsWhenManyTimersAreDue(t *testing.T) {
	c := testredis.Client(t)
	cfg := fastConfig(testPrefix(t))
	cfg.Lease, cfg.Standby, cfg.Paused = 2*time.Second, 2*time.Second, 2*time.Second
	cfg.Heartbeat = time.Second
	b, err := broker.New(c, cfg, nil) // a node whose reaper is not running yet
	require.NoError(t, err)
	t.Cleanup(b.Close)
	f := accountOn(t, b, setup{seats: 1000})
	ann := f.user("ann", nil)
	// more timers due before the named sessions' than the four calls below
	// fire (100 each)
	var fillers []broker.Principal // (a user holds at most 100 seat keys)
	for i := range 5 {
		fillers = append(fillers, f.user(fmt.Sprintf("filler%d", i), nil))
	}
	for i := range 420 {
		f.mustOpen(fillers[i/100], fmt.Sprintf("filler%d", i))
	}
	code := f.openCode(ann, "dc")
	x := f.mustOpen(ann, "dx")
	y := f.mustOpen(ann, "dy")
	p := f.mustOpen(ann, "dp")
	_, err = f.b.Pause(f.ctx, f.acct, ann.UserID, p.Session.ID, p.Fence)
	require.NoError(t, err)
	time.Sleep(2*time.Second + 300*time.Millisecond) // every timer ran out

	s, err := f.b.CloseSession(f.ctx, f.acct, ann.UserID, ann.Name, x.Session.ID, x.Fence)
	require.NoError(t, err)
	assert.Equal(t, protocol.StateEnded, s.State)
	assert.Equal(t, protocol.ReasonLeaseLost, s.Reason, "its lease ran out before the close")
	_, _, err = f.b.Join(f.ctx, code.Session.Code, "10.0.0.1")
	assert.ErrorIs(t, err, broker.ErrNotFound, "the code expired before the join")
	_, err = f.b.Pause(f.ctx, f.acct, ann.UserID, y.Session.ID, y.Fence)
	assert.ErrorIs(t, err, broker.ErrInvalid, "its lease ran out before the pause")
	_, err = f.b.Resume(f.ctx, f.acct, ann.UserID, p.Session.ID)
	assert.ErrorIs(t, err, broker.ErrInvalid, "its paused time ran out before the resume")
	for id, reason := range map[string]string{code.Session.ID: protocol.ReasonExpired,
		y.Session.ID: protocol.ReasonLeaseLost, p.Session.ID: protocol.ReasonExpired} {
		s := f.state(id)
		assert.Equal(t, protocol.StateEnded, s.State)
		assert.Equal(t, reason, s.Reason)
	}
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

// One account whose timers cannot fire (here its timer set is not a sorted
// set any more; on a Redis Cluster, an account whose master is down until
// the failover) does not hold up the others: every other account's lease
// still runs out on time (invariants 4 and 5).
func TestAnAccountThatFailsToReapDoesNotHoldUpTheOthers(t *testing.T) {
	c := testredis.Client(t)
	cfg := fastConfig(testPrefix(t))
	shortLease(&cfg)
	b := startBroker(t, c, cfg)
	bad := accountOn(t, b, setup{seats: 1})
	bad.mustOpen(bad.user("ann", nil), "d1")
	// its timer is filed in the global index; now its own timers break
	due := cfg.Prefix + ":{" + bad.acct + "}:due"
	require.NoError(t, c.Del(bad.ctx, due).Err())
	require.NoError(t, c.Set(bad.ctx, due, "not a sorted set", 0).Err())

	good := accountOn(t, b, setup{seats: 1})
	g := good.mustOpen(good.user("bob", nil), "d1")
	leaseEnd := time.Now().Add(cfg.Lease)
	s := good.waitState(g.Session.ID, protocol.StateEnded, cfg.Lease+time.Second)
	assert.WithinDuration(t, leaseEnd, time.Now(), time.Second)
	assert.Equal(t, protocol.ReasonLeaseLost, s.Reason)
}
