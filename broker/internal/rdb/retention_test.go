package rdb

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// An ended session is kept for the retention time and then removed. The
// account keeps the ended sessions in a list in the order they ended, and
// one timer in its due set stands for the list's head (timers.lua,
// RET_MARK).

func TestEndedSessionsAreRemovedAfterRetentionManyAtATime(t *testing.T) {
	const n = 75 // more than two chunks of the catch-up's reading
	s, c := batchStoreWith(t, map[string]int{"ann": 0}, 200*time.Millisecond)
	ctx := context.Background()
	setSeats(t, s, 100)
	var opens, closes []*call
	for i := range n {
		opens = append(opens, openOp(fmt.Sprintf("s%d", i), "ann", fmt.Sprintf("d%d", i)))
		closes = append(closes, closeOp(fmt.Sprintf("s%d", i), "ann"))
	}
	for _, r := range runBatch(t, s, opens...) {
		sessionOf(t, r)
	}
	for _, r := range runBatch(t, s, closes...) {
		require.Equal(t, "ended", sessionOf(t, r).State)
	}
	require.Equal(t, int64(n), c.LLen(ctx, s.keys.Retained("acme")).Val())
	due, err := c.ZRange(ctx, s.keys.Due("acme"), 0, -1).Result()
	require.NoError(t, err)
	require.Len(t, due, 1, "the ended sessions have one timer between them: %v", due)

	// kept until their retention ran out
	_, err = s.Session(ctx, "acme", "s0")
	require.NoError(t, err)
	time.Sleep(300 * time.Millisecond)
	var p struct {
		Steps int    `json:"steps"`
		Next  string `json:"next"`
	}
	require.NoError(t, decodeInto(runBatch(t, s, op("acme", opReap, "1000"))[0].res, &p))
	require.GreaterOrEqual(t, p.Steps, n)
	require.Equal(t, "-1", p.Next, "nothing is left to do")
	require.Zero(t, c.HLen(ctx, s.keys.Sessions("acme")).Val())
	require.Zero(t, c.Exists(ctx, s.keys.Retained("acme")).Val())
	requireNoTimers(t, s, "acme")
}

// Ended sessions filed before the retention list, each as a timer "~id"
// of its own, are still removed when they fall due.
func TestEndedSessionsFiledTheOldWayAreRemoved(t *testing.T) {
	s, c := batchStore(t, map[string]int{"ann": 0})
	ctx := context.Background()
	sessionOf(t, runBatch(t, s, openOp("s1", "ann", "d1"))[0])
	sessionOf(t, runBatch(t, s, closeOp("s1", "ann"))[0])
	// as an older version filed it: no list entry, a timer "~s1" now due
	require.NoError(t, c.Del(ctx, s.keys.Retained("acme"), s.keys.Due("acme")).Err())
	require.NoError(t, c.ZAdd(ctx, s.keys.Due("acme"), redis.Z{Score: 1, Member: "~s1"}).Err())
	require.Equal(t, StatusOK, runBatch(t, s, op("acme", opReap, "100"))[0].res.Status)
	_, err := s.Session(ctx, "acme", "s1")
	require.Error(t, err)
	require.Zero(t, c.Exists(ctx, s.keys.Due("acme")).Val())
}

// requireNoTimers checks that an account has no timer left: its due set
// holds the retention marker alone, parked (timers.lua, PARKED), so that
// the set stays a skiplist.
func requireNoTimers(t *testing.T, s *Store, acct string) {
	t.Helper()
	ctx := context.Background()
	due, err := s.client.ZRangeWithScores(ctx, s.keys.Due(acct), 0, -1).Result()
	require.NoError(t, err)
	require.Len(t, due, 1, "the parked retention marker alone")
	assert.Equal(t, float64(parkedScore), due[0].Score)
	assert.Equal(t, "skiplist", s.client.ObjectEncoding(ctx, s.keys.Due(acct)).Val())
}

// TestTimersStayASkiplistFromAnAccountsFirstSession: with only live
// sessions' timers (an account's first sessions, or sessions that run
// all day on heartbeats with no close in the last retention time), up to
// 128 short members, Redis kept due as a listpack, where every ZADD of a
// heartbeat scans it. The parked retention marker keeps it a skiplist from
// the first timer on, and it is no timer: the reaper is told there is
// nothing to do, and a sweep files no such account.
func TestTimersStayASkiplistFromAnAccountsFirstSession(t *testing.T) {
	s, c := batchStoreWith(t, map[string]int{"ann": 0, "bob": 0}, 500*time.Millisecond)
	ctx := context.Background()
	ann := sessionOf(t, runBatch(t, s, openOp("s1", "ann", "d1"))[0])
	sessionOf(t, runBatch(t, s, openOp("s2", "bob", "d1"))[0])
	assert.Equal(t, "skiplist", c.ObjectEncoding(ctx, s.keys.Due("acme")).Val())
	res, _, err := s.Renew(ctx, "acme", "ann", []FenceRef{{ID: ann.ID, Fence: ann.Fence}})
	require.NoError(t, err)
	require.Equal(t, StatusOK, res[0].Status)
	first, err := c.ZRangeWithScores(ctx, s.keys.Due("acme"), 0, 0).Result()
	require.NoError(t, err)
	require.Len(t, first, 1)
	assert.Less(t, first[0].Score, float64(parkedScore), "the first timer is a lease, not the marker")

	// both end; after their retention nothing is left to do
	for _, sid := range []string{"s1", "s2"} {
		user := map[string]string{"s1": "ann", "s2": "bob"}[sid]
		sessionOf(t, runBatch(t, s, closeOp(sid, user))[0])
	}
	time.Sleep(1200 * time.Millisecond)
	var p struct {
		Next string `json:"next"`
	}
	require.NoError(t, decodeInto(runBatch(t, s, op("acme", opReap, "1000"))[0].res, &p))
	assert.Equal(t, "-1", p.Next, "a parked marker is no timer")
	requireNoTimers(t, s, "acme")
	// a reaper's pass over the account leaves it out of the index
	r := NewReaper(s, time.Hour, time.Hour, nil)
	require.NoError(t, c.ZAdd(ctx, s.keys.DueIndex(), redis.Z{Score: 1, Member: "acme"}).Err())
	_, err = r.Pass(ctx)
	require.NoError(t, err)
	assert.Equal(t, redis.Nil, c.ZScore(ctx, s.keys.DueIndex(), "acme").Err(), "a pass leaves an account with no timer out of the index")
	require.NoError(t, c.ZRem(ctx, s.keys.DueIndex(), "acme").Err())
	_, err = r.Sweep(ctx)
	require.NoError(t, err)
	assert.Zero(t, c.ZScore(ctx, s.keys.DueIndex(), "acme").Val(), "a sweep files no account whose only timer is parked")
	assert.Equal(t, redis.Nil, c.ZScore(ctx, s.keys.DueIndex(), "acme").Err())
	assert.Contains(t, accountSource, fmt.Sprintf("'%d'", int64(parkedScore)), "the account code parks where the Go side looks")
}
