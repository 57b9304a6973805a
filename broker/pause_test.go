package broker_test

import (
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seatbroker/seatbroker/broker"
	"github.com/seatbroker/seatbroker/broker/protocol"
)

// Pause and resume (SPEC.md, "Pause and resume").

func TestPauseFreesSeat(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c redis.UniversalClient) {
		f := newFixture(t, c, setup{seats: 1})
		u := f.user("ann", nil)
		g := f.mustOpen(u, "d1")
		s, err := f.b.Pause(f.ctx, f.acct, u.UserID, g.Session.ID, g.Fence)
		require.NoError(t, err)
		assert.Equal(t, protocol.StatePaused, s.State)
		assert.Equal(t, int64(0), f.overview().InUse)
		f.mustOpen(f.user("bob", nil), "d1")
	})
}

func TestPauseKeepsSeatWhileAnotherSessionOfTheKeyHoldsIt(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c redis.UniversalClient) {
		f := newFixture(t, c, setup{seats: 1})
		u := f.user("ann", nil)
		g := f.mustOpen(u, "d1")
		f.mustOpen(u, "d1")
		_, err := f.b.Pause(f.ctx, f.acct, u.UserID, g.Session.ID, g.Fence)
		require.NoError(t, err)
		assert.Equal(t, int64(1), f.overview().InUse)
	})
}

func TestOnlyOwnUserMayPauseOrResume(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c redis.UniversalClient) {
		f := newFixture(t, c, setup{seats: 2})
		u := f.user("ann", nil)
		g := f.mustOpen(u, "d1")
		before := f.snapshot()
		_, err := f.b.Pause(f.ctx, f.acct, f.owner.UserID, g.Session.ID, "")
		assert.ErrorIs(t, err, broker.ErrNotFound, "even the owner may not pause another user's session")
		assert.Equal(t, before, f.snapshot())
		_, err = f.b.Pause(f.ctx, f.acct, u.UserID, g.Session.ID, g.Fence)
		require.NoError(t, err)
		_, err = f.b.Resume(f.ctx, f.acct, f.owner.UserID, g.Session.ID)
		assert.ErrorIs(t, err, broker.ErrNotFound)
	})
}

func TestOnlyActiveSessionsPauseAndOnlyPausedResume(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c redis.UniversalClient) {
		f := newFixture(t, c, setup{seats: 2})
		u := f.user("ann", nil)
		standby := f.openCode(u, "d1")
		active := f.mustOpen(u, "d2")
		before := f.snapshot()
		_, err := f.b.Pause(f.ctx, f.acct, u.UserID, standby.Session.ID, standby.Fence)
		assert.ErrorIs(t, err, broker.ErrInvalid)
		_, err = f.b.Resume(f.ctx, f.acct, u.UserID, active.Session.ID)
		assert.ErrorIs(t, err, broker.ErrInvalid)
		assert.Equal(t, before, f.snapshot())
	})
}

func TestPausedSessionIsVisibleToItsOwnUserOnly(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c redis.UniversalClient) {
		f := newFixture(t, c, setup{seats: 2})
		u := f.user("ann", nil)
		g := f.mustOpen(u, "d1")
		_, err := f.b.Pause(f.ctx, f.acct, u.UserID, g.Session.ID, g.Fence)
		require.NoError(t, err)
		list, _, err := f.b.Sessions(f.ctx, f.owner, broker.SessionFilter{})
		require.NoError(t, err)
		assert.Empty(t, list, "the owner does not see another user's paused session")
		_, err = f.b.Session(f.ctx, f.owner, g.Session.ID)
		assert.ErrorIs(t, err, broker.ErrNotFound)
		res, err := f.b.EndSessions(f.ctx, f.owner, []string{g.Session.ID})
		require.NoError(t, err)
		assert.False(t, res[0].OK)
		assert.Equal(t, protocol.CodeNotFound, res[0].Error.Code)
		own, _, err := f.b.Sessions(f.ctx, u, broker.SessionFilter{})
		require.NoError(t, err)
		require.Len(t, own, 1)
		assert.Equal(t, protocol.StatePaused, own[0].State)
	})
}

func TestResumeWithoutSeatIsDeniedAndStaysPaused(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c redis.UniversalClient) {
		f := newFixture(t, c, setup{seats: 1})
		u := f.user("ann", nil)
		g := f.mustOpen(u, "d1")
		_, err := f.b.Pause(f.ctx, f.acct, u.UserID, g.Session.ID, g.Fence)
		require.NoError(t, err)
		f.mustOpen(f.user("bob", nil), "d1")
		before := f.snapshot()
		_, err = f.b.Resume(f.ctx, f.acct, u.UserID, g.Session.ID)
		assert.ErrorIs(t, err, broker.ErrAccountLimit)
		assert.Equal(t, before, f.snapshot())
		s, err := f.b.OwnSession(f.ctx, f.acct, u.UserID, g.Session.ID)
		require.NoError(t, err)
		assert.Equal(t, protocol.StatePaused, s.State)
	})
}

func TestResumeTakesSeatWithNewFence(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c redis.UniversalClient) {
		f := newFixture(t, c, setup{seats: 1})
		u := f.user("ann", nil)
		g := f.mustOpen(u, "d1")
		_, err := f.b.Pause(f.ctx, f.acct, u.UserID, g.Session.ID, g.Fence)
		require.NoError(t, err)
		g2, err := f.b.Resume(f.ctx, f.acct, u.UserID, g.Session.ID)
		require.NoError(t, err)
		assert.Equal(t, protocol.StateActive, g2.Session.State)
		assert.NotEqual(t, g.Fence, g2.Fence)
		assert.Equal(t, int64(1), f.overview().InUse)
	})
}

func TestOnlyOwnUserOrParticipantClosesASession(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c redis.UniversalClient) {
		f := newFixture(t, c, setup{seats: 2})
		u := f.user("ann", nil)
		g := f.mustOpen(u, "d1")
		before := f.snapshot()
		_, err := f.b.CloseSession(f.ctx, f.acct, f.owner.UserID, "owner", g.Session.ID, "")
		assert.ErrorIs(t, err, broker.ErrNotFound, "closing is the participants'; admins end sessions")
		assert.Equal(t, before, f.snapshot())
		f.close(u, g.Session.ID)
	})
}

// TestTheRemoteSideCannotEndAPausedSession: "A paused session is visible
// to its own user only: nobody else sees it, or can act on it, until it
// is resumed." The remote side is told the session paused (it takes part
// in it), but its close is refused until the session resumes; then it
// may close as before.
func TestTheRemoteSideCannotEndAPausedSession(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c redis.UniversalClient) {
		f := newFixture(t, c, setup{seats: 2})
		u := f.user("ann", nil)
		g := f.openCode(u, "d1")
		_, _, err := f.b.Join(f.ctx, g.Session.Code, "127.0.0.1")
		require.NoError(t, err)
		_, err = f.b.Pause(f.ctx, f.acct, u.UserID, g.Session.ID, g.Fence)
		require.NoError(t, err)
		before := f.snapshot()

		_, err = f.b.CloseSession(f.ctx, f.acct, "", "remote", g.Session.ID, "")
		require.ErrorIs(t, err, broker.ErrForbidden)
		assert.Equal(t, before, f.snapshot(), "the refused close changed nothing")

		_, err = f.b.Resume(f.ctx, f.acct, u.UserID, g.Session.ID)
		require.NoError(t, err)
		s, err := f.b.CloseSession(f.ctx, f.acct, "", "remote", g.Session.ID, "")
		require.NoError(t, err)
		assert.Equal(t, protocol.StateEnded, s.State)
	})
}
