package rdb

import (
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seatbroker/seatbroker/internal/testredis"
)

// An account's users are read a chunk at a time (HSCAN), not in one
// command that holds Redis for the whole account: the list still holds
// every user once, across chunks, and Redis ran no command that returns
// them all.
func TestUsersAreReadAChunkAtATimeAndEachOnce(t *testing.T) {
	// a server of its own: its command counts are this test's alone
	srv, err := testredis.Start()
	require.NoError(t, err)
	t.Cleanup(srv.Stop)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { _ = c.Close() })
	s, ctx := acmeStore(t, c, testredis.Prefix(t), Defaults{Lease: time.Minute, Standby: time.Minute,
		Paused: time.Minute, Notice: time.Minute, Minute: time.Minute, Retention: time.Minute}, "5")
	const n = 3*UserScanChunk + 17
	pipe := c.Pipeline()
	for i := range n - 2 { // with owner and ann
		js := fmt.Sprintf(`{"id":"u%05d","name":"user%05d","role":"member","status":"active"}`, i, i)
		pipe.HSet(ctx, s.keys.Users("acme"), fmt.Sprintf("u%05d", i), js)
	}
	_, err = pipe.Exec(ctx)
	require.NoError(t, err)
	require.NoError(t, c.ConfigResetStat(ctx).Err())

	us, err := s.Users(ctx, "acme")
	require.NoError(t, err)
	ids := map[string]int{}
	for _, u := range us {
		ids[u.ID]++
	}
	assert.Len(t, us, n)
	assert.Len(t, ids, n, "each user once")
	stats, err := c.Info(ctx, "commandstats").Result()
	require.NoError(t, err)
	assert.NotContains(t, stats, "cmdstat_hvals", "no command returned every user")
	assert.NotContains(t, stats, "cmdstat_hgetall", "no command returned every user")
	assert.Contains(t, stats, "cmdstat_hscan:calls=")
}
