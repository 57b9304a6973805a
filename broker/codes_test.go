package broker_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seatbroker/seatbroker/broker"
	"github.com/seatbroker/seatbroker/broker/protocol"
)

// Session codes.

func TestJoiningByCodeActivatesSession(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c redis.UniversalClient) {
		f := newFixture(t, c, setup{seats: 1})
		g := f.openCode(f.user("ann", nil), "d1")
		s, acct, err := f.b.Join(f.ctx, g.Session.Code, "10.0.0.1")
		require.NoError(t, err)
		assert.Equal(t, f.acct, acct)
		assert.Equal(t, g.Session.ID, s.ID)
		assert.Equal(t, protocol.StateActive, s.State)
		assert.Empty(t, s.Code, "a used code is not shown")
		assert.Equal(t, int64(1), f.overview().InUse)
	})
}

func TestCodeWorksOnce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c redis.UniversalClient) {
		f := newFixture(t, c, setup{seats: 1})
		g := f.openCode(f.user("ann", nil), "d1")
		_, _, err := f.b.Join(f.ctx, g.Session.Code, "10.0.0.1")
		require.NoError(t, err)
		_, _, err = f.b.Join(f.ctx, g.Session.Code, "10.0.0.2")
		assert.ErrorIs(t, err, broker.ErrNotFound)
	})
}

func TestCodesAreUniqueAmongLiveSessions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c redis.UniversalClient) {
		f := newFixture(t, c, setup{seats: 200, cfg: func(c *broker.Config) { c.CodeDigits = 6 }})
		// (a user holds at most 100 seat keys: two users)
		users := []broker.Principal{f.user("ann", nil), f.user("bob", nil)}
		seen := map[string]bool{}
		for i := range 200 {
			g := f.openCode(users[i/100], fmt.Sprintf("d%d", i))
			assert.False(t, seen[g.Session.Code], "code %s given twice", g.Session.Code)
			seen[g.Session.Code] = true
		}
	})
}

func TestWrongCodesAreRateLimitedPerSource(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c redis.UniversalClient) {
		f := newFixture(t, c, setup{seats: 1})
		g := f.openCode(f.user("ann", nil), "d1")
		wrong := "000000000"
		if wrong == g.Session.Code {
			wrong = "000000001"
		}
		limited := 0
		for range 30 {
			_, _, err := f.b.Join(f.ctx, wrong, "192.0.2.7")
			var rl *broker.RateLimitedError
			if errors.As(err, &rl) {
				limited++
				assert.Positive(t, rl.RetryAfterSec)
			} else {
				assert.ErrorIs(t, err, broker.ErrNotFound)
			}
		}
		assert.Equal(t, 20, limited, "after the burst of 10 every wrong code is refused")
		// the right code from the limited source is refused too: guessing stops
		_, _, err := f.b.Join(f.ctx, g.Session.Code, "192.0.2.7")
		assert.ErrorIs(t, err, broker.ErrRateLimited)
		// another source is not affected
		_, _, err = f.b.Join(f.ctx, g.Session.Code, "198.51.100.1")
		require.NoError(t, err)
	})
}

// TestRightCodesDoNotCountAgainstTheJoinLimit: a join that succeeds gives
// its place in the source's limit back, so an address that joins many
// sessions (a help desk behind one address) is never limited by them, and
// its wrong codes still have the whole limit.
func TestRightCodesDoNotCountAgainstTheJoinLimit(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c redis.UniversalClient) {
		f := newFixture(t, c, setup{seats: 30})
		u := f.user("ann", nil)
		for i := range 2 * f.b.Config().JoinRate {
			g := f.openCode(u, fmt.Sprintf("d%d", i))
			_, _, err := f.b.Join(f.ctx, g.Session.Code, "192.0.2.9")
			require.NoError(t, err, "join %d", i+1)
		}
		wrong := 0
		for {
			_, _, err := f.b.Join(f.ctx, "0000000000"[:f.b.Config().CodeDigits], "192.0.2.9")
			if errors.Is(err, broker.ErrRateLimited) {
				break
			}
			require.ErrorIs(t, err, broker.ErrNotFound)
			wrong++
		}
		assert.Equal(t, f.b.Config().JoinRate, wrong)
	})
}

func TestMalformedCodeIsNotFound(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c redis.UniversalClient) {
		f := newFixture(t, c, setup{seats: 1})
		for _, code := range []string{"", "abc", "12345678901234567890", "12345 789"} {
			_, _, err := f.b.Join(f.ctx, code, "10.1.1.1")
			assert.ErrorIs(t, err, broker.ErrNotFound)
		}
	})
}
