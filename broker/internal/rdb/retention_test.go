package rdb

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
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
	require.Zero(t, c.Exists(ctx, s.keys.Retained("acme"), s.keys.Due("acme")).Val())
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
