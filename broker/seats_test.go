package broker_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seatbroker/seatbroker/broker"
	"github.com/seatbroker/seatbroker/broker/protocol"
)

// Seat rules 1 to 8 of SPEC.md, each against the real redis-server and the
// in-process one.

func TestSessionOpenedWithoutCodeIsActiveAndHoldsSeat(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c redis.UniversalClient) {
		f := newFixture(t, c, setup{seats: 2})
		u := f.user("ann", nil)
		g := f.mustOpen(u, "d1")
		assert.Equal(t, protocol.StateActive, g.Session.State)
		assert.Equal(t, protocol.KindPrepaid, g.Session.Kind)
		assert.NotEmpty(t, g.Fence)
		assert.Equal(t, int64(1), f.overview().InUse)
	})
}

func TestCodeReservesSeatInStandby(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c redis.UniversalClient) {
		f := newFixture(t, c, setup{seats: 1})
		u := f.user("ann", nil)
		g := f.openCode(u, "d1")
		assert.Equal(t, protocol.StateStandby, g.Session.State)
		assert.Len(t, g.Session.Code, 9)
		assert.Equal(t, int64(1), f.overview().InUse)
		other := f.user("bob", nil)
		_, err := f.open(other, "d9")
		assert.ErrorIs(t, err, broker.ErrAccountLimit, "the code's seat is taken the moment it is generated")
	})
}

func TestSameUserSameDeviceSharesSeat(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c redis.UniversalClient) {
		f := newFixture(t, c, setup{seats: 1})
		u := f.user("ann", nil)
		f.mustOpen(u, "d1")
		f.mustOpen(u, "d1")
		f.openCode(u, "d1")
		assert.Equal(t, int64(1), f.overview().InUse)
	})
}

func TestSecondDeviceTakesSecondSeat(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c redis.UniversalClient) {
		f := newFixture(t, c, setup{seats: 1})
		u := f.user("ann", nil)
		f.mustOpen(u, "d1")
		_, err := f.open(u, "d2")
		assert.ErrorIs(t, err, broker.ErrAccountLimit)
	})
}

// The users list shows how many seats each user holds: one per device with
// a session, none once they are closed.
func TestUsersListShowsSeatsHeld(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c redis.UniversalClient) {
		f := newFixture(t, c, setup{seats: 5})
		ann, bob := f.user("ann", nil), f.user("bob", nil)
		g1 := f.mustOpen(ann, "d1")
		f.mustOpen(ann, "d1") // shares the seat of d1
		f.mustOpen(ann, "d2")
		held := func() map[string]int {
			us, err := f.b.Users(f.ctx, f.owner)
			require.NoError(t, err)
			out := map[string]int{}
			for _, u := range us {
				out[u.Name] = u.SeatsHeld
			}
			return out
		}
		assert.Equal(t, 2, held()["ann"])
		assert.Equal(t, 0, held()["bob"])
		_, err := f.b.CloseSession(f.ctx, f.acct, ann.UserID, "ann", g1.Session.ID, g1.Fence)
		require.NoError(t, err)
		assert.Equal(t, 2, held()["ann"], "d1's other session still holds its seat")
		f.mustOpen(bob, "d1")
		assert.Equal(t, 1, held()["bob"])
	})
}

func TestModeUserCountsOneSeatPerUserWhateverTheDevices(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c redis.UniversalClient) {
		f := newFixture(t, c, setup{seats: 1, mode: protocol.ModeUser})
		u := f.user("ann", nil)
		f.mustOpen(u, "d1")
		f.mustOpen(u, "d2")
		assert.Equal(t, int64(1), f.overview().InUse)
		_, err := f.open(f.user("bob", nil), "d1")
		assert.ErrorIs(t, err, broker.ErrAccountLimit)
	})
}

func TestModeSessionCountsEverySession(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c redis.UniversalClient) {
		f := newFixture(t, c, setup{seats: 2, mode: protocol.ModeSession})
		u := f.user("ann", nil)
		f.mustOpen(u, "d1")
		f.mustOpen(u, "d1")
		assert.Equal(t, int64(2), f.overview().InUse)
		_, err := f.open(u, "d1")
		assert.ErrorIs(t, err, broker.ErrAccountLimit)
	})
}

func TestAccountLimitDenialCarriesPageAndOwnSessions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c redis.UniversalClient) {
		f := newFixture(t, c, setup{seats: 2})
		u := f.user("ann", nil)
		g := f.mustOpen(u, "d1")
		f.mustOpen(f.user("bob", nil), "d1")
		_, err := f.open(u, "d2")
		var de *broker.DeniedError
		require.ErrorAs(t, err, &de)
		assert.ErrorIs(t, err, broker.ErrAccountLimit)
		assert.Equal(t, "/#usage", de.PageURL)
		require.Len(t, de.Own, 1, "only the user's own sessions, not bob's")
		assert.Equal(t, g.Session.ID, de.Own[0].ID)
		d, status := broker.ErrorDetail(err)
		assert.Equal(t, protocol.CodeAccountLimit, d.Code)
		assert.Equal(t, 409, status)
	})
}

func TestUserLimitBitesBeforeAccountLimit(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c redis.UniversalClient) {
		f := newFixture(t, c, setup{seats: 5})
		u := f.user("ann", intp(1))
		f.mustOpen(u, "d1")
		f.mustOpen(u, "d1") // same key: shares, no new seat
		_, err := f.open(u, "d2")
		assert.ErrorIs(t, err, broker.ErrUserLimit, "free account seats do not help a user at its own cap")
		assert.Equal(t, int64(1), f.overview().InUse)
	})
}

func TestUserMaxSeatsCountsPPUKeysToo(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c redis.UniversalClient) {
		f := newFixture(t, c, setup{seats: 1, ppu: true})
		f.topUp(100)
		u := f.user("ann", intp(2))
		g1 := f.mustOpen(u, "d1")
		g2 := f.mustOpen(u, "d2")
		assert.Equal(t, protocol.KindPrepaid, g1.Session.Kind)
		assert.Equal(t, protocol.KindPPU, g2.Session.Kind)
		_, err := f.open(u, "d3")
		assert.ErrorIs(t, err, broker.ErrUserLimit)
	})
}

func TestBlockedUserGetsNoSeat(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c redis.UniversalClient) {
		f := newFixture(t, c, setup{seats: 5})
		u := f.user("ann", nil)
		_, err := f.b.BlockUser(f.ctx, f.owner, u.UserID, true)
		require.NoError(t, err)
		_, err = f.open(u, "d1")
		assert.ErrorIs(t, err, broker.ErrUserBlocked)
		assert.Equal(t, int64(0), f.overview().InUse)
	})
}

func TestBlockingEndsUsersSessionsWithNotice(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c redis.UniversalClient) {
		f := newFixture(t, c, setup{seats: 5})
		u := f.user("ann", nil)
		active := f.mustOpen(u, "d1")
		standby := f.openCode(u, "d2")
		other := f.mustOpen(f.user("bob", nil), "d1")
		_, err := f.b.BlockUser(f.ctx, f.owner, u.UserID, true)
		require.NoError(t, err)
		s := f.state(active.Session.ID)
		assert.Equal(t, protocol.StateTerminating, s.State)
		assert.Equal(t, protocol.ReasonUserBlocked, s.Reason)
		assert.Equal(t, "owner", s.EndedBy)
		st := f.state(standby.Session.ID)
		assert.Equal(t, protocol.StateEnded, st.State, "standby has no remote side to warn")
		assert.Equal(t, protocol.ReasonUserBlocked, st.Reason)
		assert.Equal(t, protocol.StateActive, f.state(other.Session.ID).State)
		f.waitState(active.Session.ID, protocol.StateEnded, 2*f.b.Config().Notice)
		assert.Equal(t, int64(1), f.overview().InUse)
	})
}

func TestSeatFreedWhenLastSeatHoldingSessionEnds(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c redis.UniversalClient) {
		f := newFixture(t, c, setup{seats: 1})
		u := f.user("ann", nil)
		g1 := f.mustOpen(u, "d1")
		g2 := f.mustOpen(u, "d1")
		f.close(u, g1.Session.ID)
		assert.Equal(t, int64(1), f.overview().InUse, "the other session still holds the seat")
		f.close(u, g2.Session.ID)
		assert.Equal(t, int64(0), f.overview().InUse)
		f.mustOpen(f.user("bob", nil), "d1")
	})
}

func TestLoweringSeatsRevokesNothingAndShowsOver(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c redis.UniversalClient) {
		f := newFixture(t, c, setup{seats: 3})
		u := f.user("ann", nil)
		for _, d := range []string{"d1", "d2", "d3"} {
			f.mustOpen(u, d)
		}
		f.setSeats(1)
		o := f.overview()
		assert.Equal(t, int64(3), o.InUse)
		assert.Equal(t, int64(2), o.Over)
		assert.Equal(t, int64(0), o.Free)
		_, err := f.open(f.user("bob", nil), "d1")
		assert.ErrorIs(t, err, broker.ErrAccountLimit)
	})
}

func TestNegativeOrHugeSeatsRefused(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c redis.UniversalClient) {
		f := newFixture(t, c, setup{seats: 3})
		before := f.snapshot()
		for _, n := range []int64{-1, broker.MaxSeats + 1} {
			_, err := f.b.UpdateSettings(f.ctx, f.owner, broker.SettingsPatch{Seats: &n})
			assert.ErrorIs(t, err, broker.ErrInvalid)
		}
		assert.Equal(t, before, f.snapshot())
	})
}

func TestCountingModeChangesOnlyWhileNoSeatIsHeld(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c redis.UniversalClient) {
		f := newFixture(t, c, setup{seats: 3})
		u := f.user("ann", nil)
		g := f.mustOpen(u, "d1")
		mode := protocol.ModeUser
		_, err := f.b.UpdateSettings(f.ctx, f.owner, broker.SettingsPatch{Mode: &mode})
		assert.ErrorIs(t, err, broker.ErrInvalid)
		f.close(u, g.Session.ID)
		set, err := f.b.UpdateSettings(f.ctx, f.owner, broker.SettingsPatch{Mode: &mode})
		require.NoError(t, err)
		assert.Equal(t, protocol.ModeUser, set.Mode)
	})
}

func TestDeniedOpenChangesNothing(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c redis.UniversalClient) {
		f := newFixture(t, c, setup{seats: 1})
		u := f.user("ann", nil)
		f.mustOpen(u, "d1")
		before := f.snapshot()
		_, err := f.open(u, "d2")
		require.True(t, errors.Is(err, broker.ErrAccountLimit))
		assert.Equal(t, before, f.snapshot())
	})
}

func TestModeChangeWithOnlyPausedSessionsRekeysOnResume(t *testing.T) {
	f := onRedis(t, setup{seats: 1, cfg: func(c *broker.Config) { c.Paused = 10 * time.Second }})
	u := f.user("ann", nil)
	g1 := f.mustOpen(u, "d1")
	_, err := f.b.Pause(f.ctx, f.acct, u.UserID, g1.Session.ID, g1.Fence)
	require.NoError(t, err)
	mode := protocol.ModeUser
	_, err = f.b.UpdateSettings(f.ctx, f.owner, broker.SettingsPatch{Mode: &mode})
	require.NoError(t, err)
	_, err = f.b.Resume(f.ctx, f.acct, u.UserID, g1.Session.ID)
	require.NoError(t, err)
	f.mustOpen(u, "d2") // mode user: the same seat
	assert.Equal(t, int64(1), f.overview().InUse)
	f.close(u, g1.Session.ID)
	assert.Equal(t, int64(1), f.overview().InUse)
}

// TestAUserCannotOpenSessionsWithoutEnd: sharing a seat and PPU never
// refuse a session, so a user (or a stolen token) could open sessions
// until Redis is full. A seat is shared by at most 100 sessions, and a
// user holds at most 100 seat keys; past either, user_limit (the user's
// own sessions are in the way), and nothing changes.
func TestAUserCannotOpenSessionsWithoutEnd(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c redis.UniversalClient) {
		// (codes wait longer than the test runs, even under -race)
		f := newFixture(t, c, setup{seats: 1, ppu: true, cfg: func(c *broker.Config) { c.Standby = 10 * time.Minute }})
		f.topUp(1000)
		u := f.user("ann", nil)
		for range 100 {
			f.openCode(u, "d1") // one seat, shared
		}
		before := f.snapshot()
		_, err := f.b.Open(f.ctx, broker.OpenRequest{Account: f.acct, UserID: u.UserID, DeviceID: "d1", WithCode: true})
		require.ErrorIs(t, err, broker.ErrUserLimit, "the 101st session on one seat")
		var de *broker.DeniedError
		require.ErrorAs(t, err, &de)
		assert.Len(t, de.Own, 100, "the denial lists the sessions in the way")
		assert.Equal(t, before, f.snapshot(), "the refusal changed nothing")

		// seat keys: one prepaid, then PPU ones, 100 in all
		for i := 2; i <= 100; i++ {
			f.openCode(u, fmt.Sprintf("dev-%d", i))
		}
		_, err = f.b.Open(f.ctx, broker.OpenRequest{Account: f.acct, UserID: u.UserID, DeviceID: "dev-101", WithCode: true})
		require.ErrorIs(t, err, broker.ErrUserLimit, "the 101st seat key")
		// another user is not held back by ann
		f.openCode(f.user("bob", nil), "d1")
	})
}
