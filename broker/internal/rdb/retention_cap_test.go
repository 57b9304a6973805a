package rdb

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/seatbroker/seatbroker/internal/testredis"
)

// acmeStore is a store with defaults d on the test Redis c, with account
// acme (seats licenses, its owner) and its member ann.
func acmeStore(t *testing.T, c *redis.Client, prefix string, d Defaults, seats string) (*Store, context.Context) {
	t.Helper()
	s := New(c, prefix, d)
	t.Cleanup(s.Close)
	ctx := context.Background()
	require.NoError(t, s.LoadScripts(ctx))
	require.NoError(t, s.CreateAccount(ctx, "acme", map[string]string{"seats": seats},
		UserRec{ID: "owner", Name: "owner", Role: "owner", Status: "active"}))
	_, err := s.PutUser(ctx, "acme", UserRec{ID: "ann", Name: "ann", Role: "member", Status: "active"}, true, 1000)
	require.NoError(t, err)
	return s, ctx
}

func retainStore(t *testing.T, retainMax int, retention time.Duration) (*Store, context.Context) {
	t.Helper()
	return acmeStore(t, testredis.Client(t), testredis.Prefix(t), Defaults{Lease: time.Minute, Standby: time.Minute,
		Paused: time.Minute, Notice: 30 * time.Second, Minute: time.Minute, Retention: retention, RetainMax: retainMax}, "100")
}

// An account keeps at most RetainMax ended sessions: those that ended
// first go; the others stay until their retention runs out, and then
// nothing is left behind.
func TestRetainMaxKeepsTheSessionsThatEndedLast(t *testing.T) {
	s, ctx := retainStore(t, 3, 300*time.Millisecond)
	for i := range 5 {
		sid := fmt.Sprintf("s%d", i)
		sessionOf(t, runBatch(t, s, openOp(sid, "ann", "d"+sid))[0])
		require.Equal(t, "ended", sessionOf(t, runBatch(t, s, closeOp(sid, "ann"))[0]).State)
	}
	require.Equal(t, int64(3), s.client.LLen(ctx, s.keys.Retained("acme")).Val())
	for i := range 5 {
		_, err := s.Session(ctx, "acme", fmt.Sprintf("s%d", i))
		if i < 2 {
			require.Error(t, err, "s%d ended first", i)
		} else {
			require.NoError(t, err, "s%d is among the last 3", i)
		}
	}
	// one call ending more than the bound at once
	var opens, closes []*call
	for i := 5; i < 10; i++ {
		sid := fmt.Sprintf("s%d", i)
		opens = append(opens, openOp(sid, "ann", "d"+sid))
		closes = append(closes, closeOp(sid, "ann"))
	}
	runOneCall(t, s, opens...)
	runOneCall(t, s, closes...)
	require.Equal(t, int64(3), s.client.LLen(ctx, s.keys.Retained("acme")).Val())
	require.Equal(t, int64(3), s.client.HLen(ctx, s.keys.Sessions("acme")).Val())
	time.Sleep(400 * time.Millisecond)
	runBatch(t, s, op("acme", opReap, "1000"))
	require.Zero(t, s.client.HLen(ctx, s.keys.Sessions("acme")).Val())
	require.Zero(t, s.client.Exists(ctx, s.keys.Retained("acme")).Val())
	requireNoTimers(t, s, "acme")
}

// A user keeps at most 100 paused sessions: the 101st pause is refused and
// leaves the session active; a resume, an end and a block each take a
// session off the list, so the list always names exactly the user's
// paused sessions.
func TestPausedListFollowsEveryWayOutOfPaused(t *testing.T) {
	s, ctx := retainStore(t, 0, time.Minute)
	field := "~ann"
	for i := range 101 {
		sid := fmt.Sprintf("s%03d", i)
		sessionOf(t, runBatch(t, s, openOp(sid, "ann", "d"+sid))[0])
		r := runBatch(t, s, op("acme", opPause, sid, "ann", ""))[0]
		if i < 100 {
			require.Equal(t, "paused", sessionOf(t, r).State)
		} else {
			require.Equal(t, StatusUserLimit, r.res.Status, string(r.res.Payload))
			rec, err := s.Session(ctx, "acme", sid)
			require.NoError(t, err)
			require.Equal(t, "active", rec.State)
		}
	}
	count := func() int {
		v := s.client.HGet(ctx, s.keys.Seats("acme"), field).Val()
		if v == "" {
			return 0
		}
		return len(strings.Split(v, " "))
	}
	require.Equal(t, 100, count())
	sessionOf(t, runBatch(t, s, op("acme", opResume, "s000", "ann"))[0])
	require.Equal(t, 99, count())
	require.Equal(t, "ended", sessionOf(t, runBatch(t, s, closeOp("s001", "ann"))[0]).State)
	require.Equal(t, 98, count())
	// pause and block in one call: the block finds the session paused
	// earlier in the call
	rs := runOneCall(t, s, op("acme", opPause, "s100", "ann", ""), op("acme", opBlock, "ann", "1", "owner"))
	require.Equal(t, StatusOK, rs[0].res.Status, string(rs[0].res.Payload))
	require.Equal(t, StatusOK, rs[1].res.Status, string(rs[1].res.Payload))
	require.Equal(t, 0, count())
	require.False(t, s.client.HExists(ctx, s.keys.Seats("acme"), field).Val())
	require.NoError(t, s.ScanSessions(ctx, "acme", 100, func(r SessionRec) {
		if r.ID != "s000" {
			require.Equal(t, "ended", r.State, r.ID)
		}
	}))
}

// The retention list's timer survives a catch-up that empties the list and
// then, in the same chunk of timers, ends another session: the session
// that ended last is still removed when its retention runs out.
func TestRetentionTimerSurvivesACatchUpThatEmptiesTheListAndEndsASession(t *testing.T) {
	c := testredis.Client(t)
	s, ctx := acmeStore(t, c, testredis.Prefix(t), Defaults{Lease: 300 * time.Millisecond, Standby: time.Minute,
		Paused: time.Minute, Notice: 30 * time.Second, Minute: time.Minute, Retention: 200 * time.Millisecond}, "10")

	// x ends now (removed 200 ms later); y's lease runs out 300 ms from now
	rs := runOneCall(t, s, openOp("x", "ann", "dx"), openOp("y", "ann", "dy"), closeOp("x", "ann"))
	require.Equal(t, "ended", sessionOf(t, rs[2]).State)
	time.Sleep(400 * time.Millisecond)
	// one catch-up: x's retention (the list empties), then y's lease
	runOneCall(t, s, op("acme", opReap, "1000"))
	y, err := s.Session(ctx, "acme", "y")
	require.NoError(t, err)
	require.Equal(t, "ended", y.State)
	require.Equal(t, int64(1), c.LLen(ctx, s.keys.Retained("acme")).Val())
	require.Equal(t, int64(1), c.ZCard(ctx, s.keys.Due("acme")).Val(), "the retention list's timer: %v",
		c.ZRangeWithScores(ctx, s.keys.Due("acme"), 0, -1).Val())
	time.Sleep(400 * time.Millisecond)
	runOneCall(t, s, op("acme", opReap, "1000"))
	_, err = s.Session(ctx, "acme", "y")
	require.Error(t, err, "y's retention ran out")
}

// An account over its bound of ended sessions loses at most 1,000 of them
// in one call (design.md), however many times the call writes back: a
// catch-up writes back after every timer it fires.
func TestRetainMaxRemovesAtMostAThousandEndedSessionsACall(t *testing.T) {
	c := testredis.Client(t)
	prefix := testredis.Prefix(t)
	d := Defaults{Lease: 200 * time.Millisecond, Standby: time.Minute, Paused: time.Minute,
		Notice: 30 * time.Second, Minute: time.Minute, Retention: time.Minute}
	s, ctx := acmeStore(t, c, prefix, d, "10")
	const ended = 2500
	var calls []*call
	for i := range ended {
		sid := fmt.Sprintf("e%d", i)
		calls = append(calls, openOp(sid, "ann", "d"), closeOp(sid, "ann"))
	}
	// three sessions whose leases run out: a catch-up fires three timers
	for i := range 3 {
		calls = append(calls, openOp(fmt.Sprintf("y%d", i), "ann", fmt.Sprintf("dy%d", i)))
	}
	runOneCall(t, s, calls...)
	require.Equal(t, int64(ended+3), c.HLen(ctx, s.keys.Sessions("acme")).Val())
	time.Sleep(300 * time.Millisecond)

	// the bound lowered (a restart with -retain-max 3)
	d.RetainMax = 3
	s2 := New(c, prefix, d)
	t.Cleanup(s2.Close)
	require.NoError(t, s2.LoadScripts(ctx))
	runOneCall(t, s2, op("acme", opReap, "1000"))
	left := c.HLen(ctx, s.keys.Sessions("acme")).Val()
	require.GreaterOrEqual(t, left, int64(ended+3-1000), "at most 1,000 removed in one call")
	require.Equal(t, left, c.LLen(ctx, s.keys.Retained("acme")).Val())
}
