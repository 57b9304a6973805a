package ws_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seatbroker/seatbroker/broker"
	"github.com/seatbroker/seatbroker/broker/protocol"
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

// TestASubscriptionThatSilentlyStopsDeliveringIsReplaced: node B's link
// to Redis goes half-open (a NAT or firewall that lost its state, a Redis
// host that vanished): nothing comes back on it, and nothing says so, for
// as long as TCP keeps retrying (up to ~15 min) while new connections
// work. Node B must notice that its subscription delivers nothing, take a
// new one and resynchronise: the page's stream on B and the desktop
// client on B must learn of an end made on node A meanwhile, long before
// the client's next heartbeat (15 s away here).
func TestASubscriptionThatSilentlyStopsDeliveringIsReplaced(t *testing.T) {
	t.Parallel()
	cfg := fastConfig(testredis.Prefix(t))
	cfg.Heartbeat, cfg.Lease, cfg.Notice = 15*time.Second, 40*time.Second, 20*time.Second
	na := startNode(t, redisClient(t), cfg, ws.Options{})
	line := startProxy(t, redisAddr)
	rcb := redis.NewClient(&redis.Options{Addr: line.addr(), DialTimeout: 200 * time.Millisecond,
		ReadTimeout: 500 * time.Millisecond, WriteTimeout: 500 * time.Millisecond})
	t.Cleanup(func() { _ = rcb.Close() })
	nb := startNode(t, rcb, cfg, ws.Options{})
	acct := newAccount(t, na.b, 2)
	page, cancel, err := nb.b.Watch(context.Background(), acct.id) // the page's stream on B
	require.NoError(t, err)
	defer cancel()
	d := dial(t, nb.url, desktop(acct.annTok, "dev1"))
	g, err := d.Open(context.Background())
	require.NoError(t, err)

	line.freeze() // B's connections to Redis, its subscription's too, go silent
	res, err := na.b.EndSessions(context.Background(), acct.owner, []string{g.Session.ID})
	require.NoError(t, err)
	require.True(t, res[0].OK)
	ended := time.Now()

	const within = 10 * time.Second // the probe takes 3 s and a bit; the heartbeat is 15 s away
	n := waitFor[client.Notice](t, d.Events(), within)
	assert.Equal(t, g.Session.ID, n.SessionID)
	t.Logf("the notice came %v after the end", time.Since(ended))
	timer := time.NewTimer(within - time.Since(ended))
	defer timer.Stop()
	for {
		select {
		case ev := <-page:
			switch {
			case ev.Type == broker.EventResync:
				return // the page fetches everything again
			case ev.Type == broker.EventSession && ev.Session.ID == g.Session.ID &&
				ev.Session.State == protocol.StateTerminating:
				return
			}
		case <-timer.C:
			t.Fatal("the page's stream on node B heard nothing of the end")
		}
	}
}

// TestAnEndMissedWhileRedisRestartedReachesTheClientOnceRedisHasLoaded:
// node B was away from Redis when node A ended a session, and Redis then
// restarted. Redis takes subscriptions while it loads its data and
// refuses reads until it is done, so B's resynchronisation after it
// subscribed again found Redis loading, and the desktop client on B heard
// of the end only with its next heartbeat (15 s away here). It must hear
// of it once Redis has loaded.
func TestAnEndMissedWhileRedisRestartedReachesTheClientOnceRedisHasLoaded(t *testing.T) {
	t.Parallel()
	// loading takes a while: 5000 keys at 400 µs each, serving clients
	// meanwhile
	srv, err := testredis.StartWith("--save", "", "--appendonly", "no",
		"--key-load-delay", "400", "--loading-process-events-interval-bytes", "1024")
	require.NoError(t, err)
	t.Cleanup(srv.Stop)
	ctx := context.Background()
	rca := redis.NewClient(&redis.Options{Addr: srv.Addr, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { _ = rca.Close() })
	require.NoError(t, rca.Eval(ctx, "for i = 1, 5000 do redis.call('SET', 'filler:' .. i, i) end return 1", nil).Err())
	cfg := fastConfig(testredis.Prefix(t))
	cfg.Heartbeat, cfg.Lease, cfg.Notice = 15*time.Second, 40*time.Second, 30*time.Second
	na := startNode(t, rca, cfg, ws.Options{})
	line := startProxy(t, srv.Addr)
	rcb := redis.NewClient(&redis.Options{Addr: line.addr(), DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { _ = rcb.Close() })
	nb := startNode(t, rcb, cfg, ws.Options{})
	acct := newAccount(t, na.b, 2)
	d := dial(t, nb.url, desktop(acct.annTok, "dev1"))
	g, err := d.Open(ctx)
	require.NoError(t, err)

	line.refuse(true) // B is away
	res, err := na.b.EndSessions(ctx, acct.owner, []string{g.Session.ID})
	require.NoError(t, err)
	require.True(t, res[0].OK)
	require.NoError(t, rca.Save(ctx).Err())
	srv.Kill()
	require.NoError(t, srv.Restart())
	line.refuse(false) // B comes back while Redis loads
	restarted := time.Now()
	loaded := func() bool {
		info, err := rca.Info(ctx, "persistence").Result()
		return err == nil && strings.Contains(info, "\nloading:0") // not async_loading
	}
	require.False(t, loaded(), "Redis loads for a while")
	require.Eventually(t, loaded, 10*time.Second, 10*time.Millisecond)
	t.Logf("Redis loaded in %v", time.Since(restarted))

	n := waitFor[client.Notice](t, d.Events(), 3*time.Second)
	assert.Equal(t, g.Session.ID, n.SessionID)
	t.Logf("the notice came %v after Redis restarted", time.Since(restarted))
}
