package miniclock

import (
	"context"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// A key set with a TTL is gone once the TTL has run out on the wall
// clock, as in Redis, and a key without one stays.
func TestKeysExpireAsTimePasses(t *testing.T) {
	m := miniredis.RunT(t)
	stop := Follow(m, 10*time.Millisecond)
	defer stop()
	c := redis.NewClient(&redis.Options{Addr: m.Addr()})
	defer c.Close()
	ctx := context.Background()
	require.NoError(t, c.Set(ctx, "short", "v", 100*time.Millisecond).Err())
	require.NoError(t, c.Set(ctx, "long", "v", time.Hour).Err())
	require.NoError(t, c.Set(ctx, "kept", "v", 0).Err())
	require.Eventually(t, func() bool { return c.Exists(ctx, "short").Val() == 0 }, 2*time.Second, 10*time.Millisecond)
	require.EqualValues(t, 2, c.Exists(ctx, "long", "kept").Val())
	ok, err := c.SetNX(ctx, "short", "w", time.Second).Result()
	require.NoError(t, err)
	require.True(t, ok, "its name is free again")
	stop()
	stop() // (a second stop does nothing)
}
