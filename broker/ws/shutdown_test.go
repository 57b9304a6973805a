package ws_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seatbroker/seatbroker/broker/protocol"
	"github.com/seatbroker/seatbroker/broker/ws"
	"github.com/seatbroker/seatbroker/client"
	"github.com/seatbroker/seatbroker/internal/testredis"
)

// slowAccountCalls delays the account code's calls (FCALL or EVALSHA of
// the account script, which take more than one key) while armed: a busy
// Redis, or a slow link.
type slowAccountCalls struct {
	armed atomic.Bool
	delay time.Duration
}

func (h *slowAccountCalls) slow(cmd redis.Cmder) {
	a := cmd.Args()
	if !h.armed.Load() || len(a) < 3 {
		return
	}
	if n, ok := a[2].(int); ok && n > 1 && (cmd.Name() == "fcall" || cmd.Name() == "evalsha" || cmd.Name() == "eval") {
		time.Sleep(h.delay)
	}
}

func (h *slowAccountCalls) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *slowAccountCalls) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.slow(cmd)
		return next(ctx, cmd)
	}
}
func (h *slowAccountCalls) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, c := range cmds {
			h.slow(c)
		}
		return next(ctx, cmds)
	}
}

// TestAStoppingNodeAnswersTheOpenInFlight: cmd/seatbroker stops a
// node by letting what is in flight finish, then saying goodbye to the
// websocket clients (main.go's shutdown order; ws.Server.Close: "1001
// (going away) after what is queued for it"), and a desktop client that
// gets 1001 reconnects and keeps its sessions (docs/protocol.md). An open
// that the node is granting when SIGTERM comes must therefore either be
// answered, or not happen. Here the node grants the session in Redis, the
// client never hears of it, and the orphan holds a seat until its lease
// runs out.
func TestAStoppingNodeAnswersTheOpenInFlight(t *testing.T) {
	t.Parallel()
	cfg := fastConfig(testredis.Prefix(t))
	cfg.Heartbeat, cfg.Lease = time.Second, 5*time.Second
	slow := &slowAccountCalls{delay: 400 * time.Millisecond}
	rc := redis.NewClient(&redis.Options{Addr: redisAddr})
	rc.AddHook(slow)
	t.Cleanup(func() { _ = rc.Close() })
	na := startNode(t, rc, cfg, ws.Options{})
	other := startNode(t, redisClient(t), cfg, ws.Options{})
	acct := newAccount(t, other.b, 1)
	ctx := context.Background()
	opts := desktop(acct.annTok, "dev1")
	opts.NoReconnect = true
	d := dial(t, na.url, opts)

	slow.armed.Store(true)
	type result struct {
		g   client.Grant
		err error
	}
	got := make(chan result, 1)
	go func() {
		g, err := d.Open(ctx)
		got <- result{g, err}
	}()
	time.Sleep(100 * time.Millisecond) // the open is in Redis
	na.ws.Close()                      // what cmd/seatbroker does on SIGTERM, after http.Server.Shutdown
	r := <-got
	slow.armed.Store(false)

	if r.err != nil {
		// the open was cut off: then it must not have taken a seat
		time.Sleep(500 * time.Millisecond)
		all, _, err := other.b.Sessions(ctx, acct.owner, brokerAll())
		require.NoError(t, err)
		assert.Equal(t, int64(0), inUse(t, other.b, acct.id),
			"the open in flight was answered with %v, yet it took the account's only seat for a session the client never heard of: %+v", r.err, all)
		return
	}
	assert.Equal(t, protocol.StateActive, r.g.Session.State)
}

// TestAStoppingNodeSaysGoingAwayToIdleConnectionsAtOnce: a connection
// waiting for its next frame is not held until the longest request could
// end: it gets 1001 (going away) at once, and Close returns.
func TestAStoppingNodeSaysGoingAwayToIdleConnectionsAtOnce(t *testing.T) {
	t.Parallel()
	n := startNode(t, redisClient(t), fastConfig(testredis.Prefix(t)), ws.Options{})
	acct := newAccount(t, n.b, 1)
	r := rawDial(t, n.url, acct.annTok)
	r.send(t, protocol.ClientMessage{Type: protocol.TypeHello, ID: "1", Version: protocol.Version,
		Role: protocol.RoleDesktop, DeviceID: "dev1"})
	_, _, err := r.c.ReadMessage() // welcome
	require.NoError(t, err)

	start := time.Now()
	n.ws.Close()
	assert.Less(t, time.Since(start), 2*time.Second, "Close waited for an idle connection")
	require.NoError(t, r.c.SetReadDeadline(time.Now().Add(2*time.Second)))
	for {
		_, _, err := r.c.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		require.ErrorAs(t, err, &ce)
		assert.Equal(t, websocket.CloseGoingAway, ce.Code)
		return
	}
}
