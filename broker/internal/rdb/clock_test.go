package rdb

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/seatbroker/seatbroker/internal/testredis"
)

// The reaper's clock (Now), which belongs to no account, is one fixed
// node's on a Redis Cluster: the master of the global timer index, every
// time, not whichever node a keyless TIME reaches. The test's client sees
// node i's clock i hours ahead.
func TestTheReapersClockIsTheGlobalIndexsMaster(t *testing.T) {
	cl := testredis.StartCluster(t)
	s := New(cl.SkewedClient(t), testredis.Prefix(t), Defaults{})
	t.Cleanup(s.Close)
	ctx := context.Background()
	n, err := cl.Client(t).MasterForKey(ctx, s.keys.DueIndex())
	require.NoError(t, err)
	skew := cl.Skew(n.Options().Addr)
	for i := range 12 {
		now, err := s.Now(ctx)
		require.NoError(t, err)
		require.WithinDuration(t, time.Now().Add(skew), now, 2*time.Second,
			"read %d: the reaper's clock is not the global index's master's (%s)", i, n.Options().Addr)
	}
}
