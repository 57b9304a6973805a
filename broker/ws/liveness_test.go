package ws_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seatbroker/seatbroker/broker/protocol"
	"github.com/seatbroker/seatbroker/broker/ws"
	"github.com/seatbroker/seatbroker/client"
	"github.com/seatbroker/seatbroker/internal/testredis"
)

func TestKilledClientLosesItsSeatWithinOneSecondAfterItsLease(t *testing.T) {
	t.Parallel()
	n := startNode(t, redisClient(t), fastConfig(testredis.Prefix(t)), ws.Options{})
	acct := newAccount(t, n.b, 2)
	p := startProxy(t, n.http.Listener.Addr().String())
	opts := desktop(acct.annTok, "dev1")
	opts.NoReconnect = true
	d := dial(t, p.url(), opts)
	g, err := d.Open(context.Background())
	require.NoError(t, err)
	require.Equal(t, int64(1), inUse(t, n.b, acct.id))

	p.cut() // the client vanishes: no close, no more heartbeats
	killed := time.Now()
	lease := 600 * time.Millisecond
	require.Eventually(t, func() bool { return inUse(t, n.b, acct.id) == 0 },
		lease+time.Second, 10*time.Millisecond, "the seat outlived the lease by more than 1 s")
	assert.Greater(t, time.Since(killed), lease/2, "the seat went before the lease could run out")
	s := sessionOf(t, n.b, acct.owner, g.Session.ID)
	assert.Equal(t, protocol.StateEnded, s.State)
	assert.Equal(t, protocol.ReasonLeaseLost, s.Reason)
}

func TestClientThatReconnectsWithinItsLeaseKeepsSessionAndSeat(t *testing.T) {
	t.Parallel()
	rc := redisClient(t)
	cfg := fastConfig(testredis.Prefix(t))
	roomyLease(&cfg)
	na := startNode(t, rc, cfg, ws.Options{})
	acct := newAccount(t, na.b, 2)
	p := startProxy(t, na.http.Listener.Addr().String())
	d := dial(t, p.url(), desktop(acct.annTok, "dev1"))
	ctx := context.Background()
	g, err := d.Open(ctx)
	require.NoError(t, err)

	// watch the account's count the whole time
	var most atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			o, err := na.b.OverviewOf(ctx, acct.id)
			if err == nil && o.InUse > most.Load() {
				most.Store(o.InUse)
			}
		}
	}()

	for range 3 {
		p.cut()
		waitFor[client.Disconnected](t, d.Events(), time.Second)
		rec := waitFor[client.Reconnected](t, d.Events(), time.Second)
		assert.Equal(t, []protocol.SessionRef{{ID: g.Session.ID, Fence: g.Fence}}, rec.Sessions)
	}
	// outlive two leases on the new connection's heartbeats
	assert.Never(t, func() bool { return stateOf(na.b, acct.owner, g.Session.ID) != protocol.StateActive },
		2*cfg.Lease, 20*time.Millisecond)
	close(stop)
	wg.Wait()

	s := sessionOf(t, na.b, acct.owner, g.Session.ID)
	assert.Equal(t, protocol.StateActive, s.State)
	assert.Equal(t, int64(1), inUse(t, na.b, acct.id))
	assert.Equal(t, int64(1), most.Load(), "a reconnect took a second license")

	// the kept session still works on the new connection
	_, err = d.CloseSession(ctx, g.Session.ID)
	require.NoError(t, err)
	assert.Equal(t, int64(0), inUse(t, na.b, acct.id))
}

func TestReconnectToAnotherNodeKeepsTheSession(t *testing.T) {
	t.Parallel()
	na, nb := twoNodes(t)
	acct := newAccount(t, na.b, 2)
	opts := desktop(acct.annTok, "dev1")
	opts.NoReconnect = true
	d := dial(t, na.url, opts)
	g, err := d.Open(context.Background())
	require.NoError(t, err)
	refs := d.Sessions()
	require.NoError(t, d.Close())

	// a new process, on another node, with what the old one saved
	d2 := dial(t, nb.url, client.Options{Token: acct.annTok, DeviceID: "dev1", Sessions: refs})
	assert.Equal(t, []protocol.SessionRef{{ID: g.Session.ID, Fence: g.Fence}}, d2.Sessions())
	assert.Equal(t, int64(1), inUse(t, nb.b, acct.id))
	// node B's heartbeats keep it now, lease after lease
	assert.Never(t, func() bool { return stateOf(nb.b, acct.owner, g.Session.ID) != protocol.StateActive },
		2*600*time.Millisecond, 20*time.Millisecond)
	assert.Equal(t, protocol.StateActive, stateOf(nb.b, acct.owner, g.Session.ID))
}

// A connection that stops delivering without closing (half-open) is given
// up when no ack came for three quarters of the lease, by a deadline of its
// own: the heartbeat tick after it comes only when the lease runs out
// (default ratio, a third), too late for the reconnect to renew.
func TestHalfOpenConnectionIsGivenUpBeforeTheLeaseRunsOut(t *testing.T) {
	t.Parallel()
	cfg := fastConfig(testredis.Prefix(t))
	cfg.Heartbeat, cfg.Lease = 300*time.Millisecond, 900*time.Millisecond // SPEC's 10 s / 30 s, scaled
	n := startNode(t, redisClient(t), cfg, ws.Options{})
	acct := newAccount(t, n.b, 2)
	p := startProxy(t, n.http.Listener.Addr().String())
	d := dial(t, p.url(), desktop(acct.annTok, "dev1"))
	ctx := context.Background()
	g, err := d.Open(ctx)
	require.NoError(t, err)
	time.Sleep(700 * time.Millisecond) // a few heartbeats acked

	p.freeze()
	frozen := time.Now()
	waitFor[client.Disconnected](t, d.Events(), 3*cfg.Lease)
	gaveUp := time.Since(frozen)
	waitFor[client.Reconnected](t, d.Events(), 3*cfg.Lease)
	t.Logf("gave the silent connection up %v after it went silent (lease %v)", gaveUp, cfg.Lease)

	s := sessionOf(t, n.b, acct.owner, g.Session.ID)
	assert.Equal(t, protocol.StateActive, s.State, "the session was lost (%s) although the client was connected and reconnected by itself", s.Reason)
	assert.Equal(t, []protocol.SessionRef{{ID: g.Session.ID, Fence: g.Fence}}, d.Sessions())
}

// The node accepts any heartbeat shorter than the lease, here 25 s against
// 30 s (scaled), longer than three quarters of the lease: no ack is due for
// most of the lease then, and the client gives each heartbeat an eighth of
// the lease to be answered rather than give up the healthy connection.
func TestAcceptedHeartbeatNearTheLeaseKeepsAHealthyConnection(t *testing.T) {
	t.Parallel()
	cfg := fastConfig(testredis.Prefix(t))
	cfg.Heartbeat, cfg.Lease = 500*time.Millisecond, 600*time.Millisecond // 25 s / 30 s, scaled
	require.NoError(t, cfg.Validate())
	n := startNode(t, redisClient(t), cfg, ws.Options{})
	acct := newAccount(t, n.b, 2)
	d := dial(t, n.url, desktop(acct.annTok, "dev1"))
	_, err := d.Open(context.Background())
	require.NoError(t, err)
	timer := time.NewTimer(2 * time.Second)
	defer timer.Stop()
	for {
		select {
		case e := <-d.Events():
			if dis, ok := e.(client.Disconnected); ok {
				t.Fatalf("the client dropped a healthy connection (%v) with heartbeat %v and lease %v", dis.Err, cfg.Heartbeat, cfg.Lease)
			}
		case <-timer.C:
			return
		}
	}
}

// A connection that has not said hello (successfully) within the hello
// wait is nobody: it is closed with 1008, however well it answers pings,
// whether it said nothing, sent requests before hello, or had its hello
// refused. One that said hello in time stays.
func TestAConnectionWithoutAHelloIsClosedAfterTheHelloWait(t *testing.T) {
	t.Parallel()
	const wait = 300 * time.Millisecond
	n := startNode(t, redisClient(t), fastConfig(testredis.Prefix(t)), ws.Options{HelloWait: wait})
	acct := newAccount(t, n.b, 2)
	raw := func() *websocket.Conn {
		t.Helper()
		c, resp, err := websocket.DefaultDialer.Dial(n.url, nil)
		require.NoError(t, err)
		_ = resp.Body.Close()
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	began := time.Now()
	silent := raw() // reading answers the pings; it says nothing
	early := raw()
	require.NoError(t, early.WriteJSON(protocol.ClientMessage{Type: protocol.TypeHeartbeat, ID: "hb"}))
	refused := raw()
	require.NoError(t, refused.WriteJSON(protocol.ClientMessage{Type: protocol.TypeHello, ID: "h", Version: protocol.Version,
		Role: protocol.RoleDesktop, DeviceID: "dev1", Token: "sbt_not-a-token"}))
	greeted := rawHello(t, n.url, protocol.ClientMessage{Type: protocol.TypeHello, Version: protocol.Version,
		Role: protocol.RoleDesktop, DeviceID: "dev2", Token: acct.annTok})

	for name, c := range map[string]*websocket.Conn{"silent": silent, "request before hello": early, "refused hello": refused} {
		ce := closeFrame(t, c, 2*time.Second)
		assert.Equal(t, websocket.ClosePolicyViolation, ce.Code, name)
		assert.Equal(t, "no hello within 300ms", ce.Text, name)
	}
	assert.GreaterOrEqual(t, time.Since(began), wait, "closed before the hello wait was over")
	require.Eventually(t, func() bool { return n.ws.Conns() == 1 }, time.Second, 10*time.Millisecond,
		"only the connection that said hello is left")

	time.Sleep(wait) // well past its hello wait
	require.NoError(t, greeted.WriteJSON(protocol.ClientMessage{Type: protocol.TypeHeartbeat, ID: "hb"}))
	var m protocol.ServerMessage
	require.NoError(t, greeted.ReadJSON(&m))
	assert.Equal(t, protocol.TypeAck, m.Type, "%+v", m)
}

// A remote hello needs no credentials: until it joins (or rejoins) a
// session the connection is still nobody, and one that joins none within
// the join wait is closed with 1008, pings or not. One that joined stays.
func TestARemoteConnectionThatJoinsNoSessionIsClosedAfterTheJoinWait(t *testing.T) {
	t.Parallel()
	const wait = 400 * time.Millisecond
	n := startNode(t, redisClient(t), fastConfig(testredis.Prefix(t)), ws.Options{JoinWait: wait})
	acct := newAccount(t, n.b, 2)
	d := dial(t, n.url, desktop(acct.annTok, "dev1"))
	g, err := d.Open(context.Background(), client.WithCode())
	require.NoError(t, err)
	hello := protocol.ClientMessage{Type: protocol.TypeHello, ID: "h", Version: protocol.Version, Role: protocol.RoleRemote}
	began := time.Now()
	nobody := rawHello(t, n.url, hello)
	joins := rawHello(t, n.url, hello)
	require.NoError(t, joins.WriteJSON(protocol.ClientMessage{Type: protocol.TypeJoin, ID: "j", Code: g.Session.Code}))

	ce := closeFrame(t, nobody, 2*time.Second)
	assert.Equal(t, websocket.ClosePolicyViolation, ce.Code)
	assert.Equal(t, "no session joined within 400ms", ce.Text)
	assert.GreaterOrEqual(t, time.Since(began), wait, "closed before the join wait was over")

	time.Sleep(wait) // the joined one is well past its join wait
	require.NoError(t, joins.WriteJSON(protocol.ClientMessage{Type: protocol.TypeHeartbeat, ID: "hb"}))
	require.NoError(t, joins.SetReadDeadline(time.Now().Add(2*time.Second)))
	for {
		var m protocol.ServerMessage
		require.NoError(t, joins.ReadJSON(&m), "the remote side that joined was kept")
		if m.Type == protocol.TypeAck {
			break
		}
	}
}
