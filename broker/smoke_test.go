package broker_test

import (
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

func TestSmoke(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c redis.UniversalClient) {
		f := newFixture(t, c, setup{seats: 2})
		u := f.user("ann", nil)
		g := f.mustOpen(u, "d1")
		require.Equal(t, "active", g.Session.State)
		require.Equal(t, int64(1), f.overview().InUse)
	})
}
