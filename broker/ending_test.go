package broker_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seatbroker/seatbroker/broker"
	"github.com/seatbroker/seatbroker/broker/protocol"
)

// Ending sessions (SPEC.md, "Ending sessions").

func TestEndingActiveSessionGivesNoticeThenEndsAtDeadline(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c redis.UniversalClient) {
		f := newFixture(t, c, setup{seats: 1})
		u := f.user("ann", nil)
		g := f.mustOpen(u, "d1")
		res, err := f.b.EndSessions(f.ctx, f.owner, []string{g.Session.ID})
		require.NoError(t, err)
		require.True(t, res[0].OK)
		s := res[0].Session
		assert.Equal(t, protocol.StateTerminating, s.State)
		assert.Equal(t, protocol.ReasonTerminated, s.Reason)
		assert.Equal(t, "owner", s.EndedBy)
		require.NotNil(t, s.Deadline)
		assert.InDelta(t, f.b.Config().Notice.Seconds(), float64(s.SecondsLeft), 1)
		assert.Equal(t, int64(1), f.overview().InUse, "a terminating session holds its seat")
		deadline := *s.Deadline
		ended := f.waitState(g.Session.ID, protocol.StateEnded, f.b.Config().Notice+time.Second)
		assert.WithinDuration(t, deadline, time.Now(), time.Second)
		assert.Equal(t, protocol.ReasonTerminated, ended.Reason)
		assert.Equal(t, int64(0), f.overview().InUse)
	})
}

func TestEndingStandbySessionEndsAtOnce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c redis.UniversalClient) {
		f := newFixture(t, c, setup{seats: 1})
		g := f.openCode(f.user("ann", nil), "d1")
		res, err := f.b.EndSessions(f.ctx, f.owner, []string{g.Session.ID})
		require.NoError(t, err)
		assert.Equal(t, protocol.StateEnded, res[0].Session.State)
		assert.Equal(t, int64(0), f.overview().InUse)
	})
}

func TestEndingAgainChangesNothing(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c redis.UniversalClient) {
		f := newFixture(t, c, setup{seats: 1})
		g := f.mustOpen(f.user("ann", nil), "d1")
		first, err := f.b.EndSessions(f.ctx, f.owner, []string{g.Session.ID})
		require.NoError(t, err)
		second, err := f.b.EndSessions(f.ctx, f.owner, []string{g.Session.ID, g.Session.ID})
		require.NoError(t, err)
		require.Len(t, second, 2)
		assert.Equal(t, first[0].Session.Deadline, second[0].Session.Deadline, "the deadline does not move")
		assert.Equal(t, first[0].Session.Deadline, second[1].Session.Deadline)
	})
}

func TestParticipantMayCloseDuringNotice(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c redis.UniversalClient) {
		f := newFixture(t, c, setup{seats: 1})
		u := f.user("ann", nil)
		g := f.mustOpen(u, "d1")
		_, err := f.b.EndSessions(f.ctx, f.owner, []string{g.Session.ID})
		require.NoError(t, err)
		s, err := f.b.CloseSession(f.ctx, f.acct, "", "remote", g.Session.ID, "")
		require.NoError(t, err)
		assert.Equal(t, protocol.StateEnded, s.State)
		assert.Equal(t, protocol.ReasonClosed, s.Reason)
		require.NotNil(t, s.EndedAt, "an ended session says when it ended")
		assert.False(t, s.EndedAt.Before(s.Created), "ended %v, created %v", s.EndedAt, s.Created)
		assert.Equal(t, int64(0), f.overview().InUse)
		// and the page's list says the same
		list, _, err := f.b.Sessions(f.ctx, f.owner, broker.SessionFilter{States: []string{protocol.StateEnded}})
		require.NoError(t, err)
		require.Len(t, list, 1)
		require.NotNil(t, list[0].EndedAt)
		assert.True(t, s.EndedAt.Equal(*list[0].EndedAt))
	})
}

func TestTerminatingSessionEndsWhenRequestingNodeDies(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c redis.UniversalClient) {
		cfg := fastConfig(testPrefix(t))
		// node A takes the request and dies at once; node B only reaps
		a, err := broker.New(c, cfg, nil)
		require.NoError(t, err)
		f := accountOn(t, a, setup{seats: 1})
		g := f.mustOpen(f.user("ann", nil), "d1")
		_, err = a.EndSessions(context.Background(), f.owner, []string{g.Session.ID})
		require.NoError(t, err)
		a.Close()
		b := startBroker(t, c, cfg)
		f.b = b
		s := f.waitState(g.Session.ID, protocol.StateEnded, cfg.Notice+time.Second)
		assert.Equal(t, protocol.ReasonTerminated, s.Reason)
		o, err := b.OverviewOf(f.ctx, f.acct)
		require.NoError(t, err)
		assert.Equal(t, int64(0), o.InUse)
	})
}

func TestTerminatingSessionCannotPauseAndRenewalKeepsItsDeadline(t *testing.T) {
	f := onRedis(t, setup{seats: 2, cfg: func(c *broker.Config) { c.Notice = 2 * time.Second }})
	u := f.user("ann", nil)
	g := f.mustOpen(u, "d1")
	res, err := f.b.EndSessions(f.ctx, f.owner, []string{g.Session.ID})
	require.NoError(t, err)
	_, err = f.b.Pause(f.ctx, f.acct, u.UserID, g.Session.ID, g.Fence)
	assert.ErrorIs(t, err, broker.ErrInvalid)
	rr, err := f.b.Renew(f.ctx, f.acct, u.UserID, []broker.SessionRef{{ID: g.Session.ID, Fence: g.Fence}})
	require.NoError(t, err)
	require.NoError(t, rr[0].Err)
	assert.Equal(t, res[0].Session.Deadline, rr[0].Session.Deadline)
	f.waitState(g.Session.ID, protocol.StateEnded, 3*time.Second)
	assert.Equal(t, int64(0), f.overview().InUse)
}

// TestAnEndFiledDuringAReapPassEndsAtItsDeadline: SPEC.md invariant 4 with
// every node alive. An admin ends a session while the reaper is between
// firing the account's due timers and refiling the account in the global
// timer index. The end files its deadline in the index earlier-only (a
// no-op: the index still holds the timer the reaper just fired); the
// reaper's refiling must not then bury the deadline under the account's
// next timer as it was before the end (the lease, 30 s on), which would
// leave it to the sweep (10 s).
func TestAnEndFiledDuringAReapPassEndsAtItsDeadline(t *testing.T) {
	cfg := broker.DefaultConfig()
	cfg.Prefix = testPrefix(t)
	cfg.Notice = 500 * time.Millisecond
	cfg.Standby = 300 * time.Millisecond
	cfg.ReapInterval = 50 * time.Millisecond
	// the sweep keeps its default (10 s), as in production
	b, duringAReap := brokerHeldInAReap(t, cfg)
	f := accountOn(t, b, setup{seats: 5})
	ann := f.user("ann", nil)
	g := f.mustOpen(ann, "d1") // active, lease 30 s
	f.openCode(ann, "d2")      // standby: its timer falls due in 300 ms

	var res []protocol.EndResult
	var err error
	duringAReap(func() {
		res, err = b.EndSessions(context.Background(), f.owner, []string{g.Session.ID})
	})
	require.NoError(t, err)
	require.Len(t, res, 1)
	require.NotNil(t, res[0].Session.Deadline)
	deadline := *res[0].Session.Deadline
	s := f.waitState(g.Session.ID, protocol.StateEnded, time.Until(deadline)+time.Second)
	assert.Equal(t, protocol.ReasonTerminated, s.Reason)
	assert.Equal(t, int64(0), f.overview().InUse)
}
