package ws_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seatbroker/seatbroker/broker/protocol"
	"github.com/seatbroker/seatbroker/broker/ws"
	"github.com/seatbroker/seatbroker/client"
	"github.com/seatbroker/seatbroker/internal/testredis"
)

// TestClientsGivenSeveralNodesKeepTheirSessionWhenTheirNodeDies: a
// desktop client and a remote side of one session are on node A, and
// know node B's address too (no load balancer). Node A dies (its
// connections reset, nothing more answers there, its loops stop): both
// come back on node B before the lease runs out, to the same session on
// the same seat with the same fencing token, and B's heartbeats keep it.
func TestClientsGivenSeveralNodesKeepTheirSessionWhenTheirNodeDies(t *testing.T) {
	t.Parallel()
	rc := redisClient(t)
	cfg := fastConfig(testredis.Prefix(t))
	na := startNode(t, rc, cfg, ws.Options{})
	nb := startNode(t, rc, cfg, ws.Options{})
	acct := newAccount(t, na.b, 2)
	line := startProxy(t, na.http.Listener.Addr().String()) // node A as its clients reach it
	ctx := context.Background()

	dopts := desktop(acct.annTok, "dev1")
	dopts.Addresses = []string{nb.url}
	d := dial(t, line.url(), dopts)
	g, err := d.Open(ctx, client.WithCode())
	require.NoError(t, err)
	r := dial(t, line.url(), client.Options{Role: client.RoleRemote, MinBackoff: 20 * time.Millisecond,
		Addresses: []string{nb.url}})
	_, err = r.Join(ctx, g.Session.Code)
	require.NoError(t, err)
	waitFor[client.SessionChanged](t, d.Events(), time.Second) // active

	// node A dies: kill -9 resets its connections and answers no more
	line.refuse(true)
	na.stop()
	rec := waitFor[client.Reconnected](t, d.Events(), cfg.Lease/2)
	assert.Equal(t, []protocol.SessionRef{{ID: g.Session.ID, Fence: g.Fence}}, rec.Sessions)
	waitFor[client.Reconnected](t, r.Events(), cfg.Lease/2)

	// node B's heartbeats keep it, lease after lease, on one seat
	assert.Never(t, func() bool { return stateOf(nb.b, acct.owner, g.Session.ID) != protocol.StateActive },
		2*cfg.Lease, 20*time.Millisecond)
	assert.Equal(t, int64(1), inUse(t, nb.b, acct.id))
	assert.Equal(t, []protocol.SessionRef{{ID: g.Session.ID, Fence: g.Fence}}, d.Sessions())

	// both sides are in the session on node B: an end reaches them there
	res, err := nb.b.EndSessions(ctx, acct.owner, []string{g.Session.ID})
	require.NoError(t, err)
	require.True(t, res[0].OK)
	assert.Equal(t, g.Session.ID, waitFor[client.Notice](t, d.Events(), time.Second).SessionID)
	assert.Equal(t, g.Session.ID, waitFor[client.Notice](t, r.Events(), time.Second).SessionID)
}
