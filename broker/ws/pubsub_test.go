package ws_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seatbroker/seatbroker/broker/ws"
	"github.com/seatbroker/seatbroker/client"
	"github.com/seatbroker/seatbroker/internal/testredis"
)

// TestANoticeLostDuringAPubSubOutageStillArrives: docs/protocol.md,
// "Pub/sub may drop messages, so every heartbeat_ack carries any pending
// notice too, and a node whose subscription was re-established re-reads
// its sessions". Node B loses Redis for a moment; meanwhile an admin on
// node A ends a session whose desktop side is on B. Once B's subscription
// is back, the notice must reach the desktop client without waiting for
// the next heartbeat (here 5 s away).
func TestANoticeLostDuringAPubSubOutageStillArrives(t *testing.T) {
	t.Parallel()
	cfg := fastConfig(testredis.Prefix(t))
	cfg.Heartbeat, cfg.Lease, cfg.Notice = 5*time.Second, 15*time.Second, 4*time.Second
	na := startNode(t, redisClient(t), cfg, ws.Options{})
	line := startProxy(t, redisAddr)
	rcb := redis.NewClient(&redis.Options{Addr: line.addr(), DialTimeout: 200 * time.Millisecond,
		ReadTimeout: 500 * time.Millisecond, WriteTimeout: 500 * time.Millisecond})
	t.Cleanup(func() { _ = rcb.Close() })
	nb := startNode(t, rcb, cfg, ws.Options{})
	acct := newAccount(t, na.b, 2)
	d := dial(t, nb.url, desktop(acct.annTok, "dev1"))
	g, err := d.Open(context.Background())
	require.NoError(t, err)
	time.Sleep(200 * time.Millisecond)

	line.refuse(true)
	time.Sleep(300 * time.Millisecond)
	res, err := na.b.EndSessions(context.Background(), acct.owner, []string{g.Session.ID})
	require.NoError(t, err)
	require.True(t, res[0].OK)
	time.Sleep(300 * time.Millisecond)
	line.refuse(false)
	mended := time.Now()

	n := waitFor[client.Notice](t, d.Events(), 3*time.Second)
	t.Logf("the notice came %v after the line was mended", time.Since(mended))
	assert.Equal(t, g.Session.ID, n.SessionID)
}
