package main

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seatbroker/seatbroker/broker"
	"github.com/seatbroker/seatbroker/internal/testredis"
)

func TestAccountCreateMakesAnAccountItsOwnerCanSignInTo(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	prefix := testredis.Prefix(t)
	args := []string{"globex", "-redis-url", "redis://" + testredis.Addr(t), "-prefix", prefix, "-owner", "hank", "-seats", "12", "-ppu"}
	require.NoError(t, accountCreate(ctx, args, strings.NewReader("hank-password\n")))

	cfg := broker.DefaultConfig()
	cfg.Prefix = prefix
	b, err := broker.New(testredis.Client(t), cfg, nil)
	require.NoError(t, err)
	defer b.Close()
	tok, err := b.SignIn(ctx, broker.Credentials{Account: "globex", Name: "hank", Password: "hank-password"}, "127.0.0.1", broker.TokenClient, 0)
	require.NoError(t, err)
	assert.Equal(t, "owner", tok.Principal.Role)
	set, err := b.Settings(ctx, "globex")
	require.NoError(t, err)
	assert.Equal(t, int64(12), set.Seats)
	assert.True(t, set.PPUEnabled)

	// the same id again is refused and changes nothing
	err = accountCreate(ctx, args, strings.NewReader("other-password\n"))
	assert.ErrorIs(t, err, broker.ErrInvalid)
	_, err = b.SignIn(ctx, broker.Credentials{Account: "globex", Name: "hank", Password: "hank-password"}, "127.0.0.1", broker.TokenClient, 0)
	require.NoError(t, err)
}

// TestAccountCreateWorksOnARedisCluster creates accounts whose keys fall
// on every master of a Redis Cluster: with -redis-cluster the URL is a
// cluster seed, not the one node that owns every key.
func TestAccountCreateWorksOnARedisCluster(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cl := testredis.StartCluster(t)
	prefix := testredis.Prefix(t)
	url := "redis://" + cl.Addrs[0] + "?addr=" + cl.Addrs[1]
	cfg := broker.DefaultConfig()
	cfg.Prefix = prefix
	b, err := broker.New(cl.Client(t), cfg, nil)
	require.NoError(t, err)
	defer b.Close()
	for _, id := range []string{"acme", "globex", "initech", "umbrella", "hooli", "wonka"} {
		args := []string{id, "-redis-url", url, "-redis-cluster", "-prefix", prefix, "-owner", "hank"}
		require.NoError(t, accountCreate(ctx, args, strings.NewReader("hank-password\n")), id)
		_, err := b.SignIn(ctx, broker.Credentials{Account: id, Name: "hank", Password: "hank-password"}, "127.0.0.1", broker.TokenClient, 0)
		require.NoError(t, err, id)
	}
}

// README: a deployment on Sentinel runs its nodes with
// -redis-sentinel-master and the sentinels' URL; the operator's
// `seatctl account-create ID -redis-url redis://s1:26379,s2:26379/0` could
// not create an account there: it took the sentinel list for one host
// (or, with one sentinel, sent the account code to the sentinel).
func TestAccountCreateWorksThroughSentinel(t *testing.T) {
	t.Setenv("SEATBROKER_REDIS_SENTINEL_MASTER", "")
	ctx := context.Background()
	s1 := testredis.StartSentinel(t, "seatmaster", testredis.Addr(t))
	s2 := testredis.StartSentinel(t, "seatmaster", testredis.Addr(t))
	prefix := testredis.Prefix(t)
	args := []string{"initech", "-redis-url", "redis://" + s1 + "," + s2 + "/0", "-redis-sentinel-master", "seatmaster",
		"-prefix", prefix, "-owner", "hank"}
	require.NoError(t, accountCreate(ctx, args, strings.NewReader("hank-password\n")))
	cfg := broker.DefaultConfig()
	cfg.Prefix = prefix
	b, err := broker.New(testredis.Client(t), cfg, nil)
	require.NoError(t, err)
	defer b.Close()
	_, err = b.SignIn(ctx, broker.Credentials{Account: "initech", Name: "hank", Password: "hank-password"}, "127.0.0.1", broker.TokenClient, 0)
	require.NoError(t, err)
}
