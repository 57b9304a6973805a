package ws_test

import (
	"context"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seatbroker/seatbroker/broker/protocol"
	"github.com/seatbroker/seatbroker/broker/ws"
	"github.com/seatbroker/seatbroker/client"
	"github.com/seatbroker/seatbroker/internal/testredis"
)

// blackhole forwards TCP connections to a node; freeze makes the
// connections open at that moment silently drop everything in both
// directions (a half-open connection: a dead NAT entry, a hung node, a
// network that stopped delivering) while new connections work.
type blackhole struct {
	ln     net.Listener
	target atomic.Value // string
	wg     sync.WaitGroup

	mu    sync.Mutex
	conns []*bhConn // guarded by mu
}

type bhConn struct {
	in, out net.Conn
	frozen  atomic.Bool
}

func startBlackhole(t *testing.T, target string) *blackhole {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &blackhole{ln: ln}
	p.target.Store(target)
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		_ = ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			_ = c.in.Close()
			_ = c.out.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *blackhole) url() string { return "ws://" + p.ln.Addr().String() + protocol.WSPath }

func (p *blackhole) accept() {
	defer p.wg.Done()
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		out, err := net.Dial("tcp", p.target.Load().(string))
		if err != nil {
			_ = in.Close()
			continue
		}
		c := &bhConn{in: in, out: out}
		p.mu.Lock()
		p.conns = append(p.conns, c)
		p.mu.Unlock()
		pipe := func(dst, src net.Conn) {
			defer p.wg.Done()
			buf := make([]byte, 32<<10)
			for {
				n, err := src.Read(buf)
				if n > 0 && !c.frozen.Load() {
					if _, werr := dst.Write(buf[:n]); werr != nil {
						break
					}
				}
				if err != nil {
					break
				}
			}
			_ = dst.Close()
		}
		p.wg.Add(2)
		go pipe(out, in)
		go pipe(in, out)
	}
}

func (p *blackhole) freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.frozen.Store(true)
	}
}

// TestReview3HalfOpenConnectionIsGivenUpBeforeTheLeaseRunsOut: docs/protocol.md
// says a client gives a connection up when no ack came for about three
// quarters of the lease, "so the new connection renews in time", and
// SPEC.md says a client that reconnects before the lease runs out keeps its
// sessions. With the default ratio (heartbeat a third of the lease), a
// connection that stops delivering must be given up and replaced while the
// seat is still held.
func TestReview3HalfOpenConnectionIsGivenUpBeforeTheLeaseRunsOut(t *testing.T) {
	t.Parallel()
	cfg := fastConfig(testredis.Prefix(t))
	cfg.Heartbeat, cfg.Lease = 300*time.Millisecond, 900*time.Millisecond // SPEC's 10 s / 30 s, scaled
	n := startNode(t, redisClient(t), cfg, ws.Options{})
	acct := newAccount(t, n.b, 2)
	p := startBlackhole(t, n.http.Listener.Addr().String())
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

// redisLine is a loopback TCP proxy to Redis that the test can cut (every
// open connection closed, new ones refused) and mend.
type redisLine struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup

	mu    sync.Mutex
	cut   bool                  // guarded by mu
	conns map[net.Conn]struct{} // guarded by mu
}

func newRedisLine(t *testing.T, target string) *redisLine {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	l := &redisLine{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			l.mu.Lock()
			if l.cut {
				l.mu.Unlock()
				_ = in.Close()
				continue
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				l.mu.Unlock()
				_ = in.Close()
				continue
			}
			l.conns[in], l.conns[out] = struct{}{}, struct{}{}
			l.mu.Unlock()
			l.wg.Add(2)
			go func() { defer l.wg.Done(); _, _ = io.Copy(out, in); _ = out.Close(); _ = in.Close() }()
			go func() { defer l.wg.Done(); _, _ = io.Copy(in, out); _ = in.Close(); _ = out.Close() }()
		}
	}()
	t.Cleanup(func() { _ = ln.Close(); l.setCut(true); l.wg.Wait() })
	return l
}

func (l *redisLine) addr() string { return l.ln.Addr().String() }

func (l *redisLine) setCut(cut bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cut = cut
	if cut {
		for c := range l.conns {
			_ = c.Close()
		}
		clear(l.conns)
	}
}

// TestReview3NoticeLostDuringAPubSubOutageStillArrives: docs/protocol.md,
// "Pub/sub may drop messages, so every heartbeat_ack carries any pending
// notice too, and a node whose subscription was re-established re-reads
// its sessions". Node B loses Redis for a moment; meanwhile an admin on
// node A ends a session whose desktop side is on B. Once B's subscription
// is back, the notice must reach the desktop client without waiting for
// the next heartbeat (here 5 s away).
func TestReview3NoticeLostDuringAPubSubOutageStillArrives(t *testing.T) {
	t.Parallel()
	cfg := fastConfig(testredis.Prefix(t))
	cfg.Heartbeat, cfg.Lease, cfg.Notice = 5*time.Second, 15*time.Second, 4*time.Second
	na := startNode(t, redisClient(t), cfg, ws.Options{})
	line := newRedisLine(t, redisAddr)
	rcb := redis.NewClient(&redis.Options{Addr: line.addr(), DialTimeout: 200 * time.Millisecond,
		ReadTimeout: 500 * time.Millisecond, WriteTimeout: 500 * time.Millisecond})
	t.Cleanup(func() { _ = rcb.Close() })
	nb := startNode(t, rcb, cfg, ws.Options{})
	acct := newAccount(t, na.b, 2)
	d := dial(t, nb.url, desktop(acct.annTok, "dev1"))
	g, err := d.Open(context.Background())
	require.NoError(t, err)
	time.Sleep(200 * time.Millisecond)

	line.setCut(true)
	time.Sleep(300 * time.Millisecond)
	res, err := na.b.EndSessions(context.Background(), acct.owner, []string{g.Session.ID})
	require.NoError(t, err)
	require.True(t, res[0].OK)
	time.Sleep(300 * time.Millisecond)
	line.setCut(false)
	mended := time.Now()

	n := waitFor[client.Notice](t, d.Events(), 3*time.Second)
	t.Logf("the notice came %v after the line was mended", time.Since(mended))
	assert.Equal(t, g.Session.ID, n.SessionID)
}

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

// TestReview3StoppingNodeFinishesTheOpenInFlight: cmd/seatbroker stops a
// node by letting what is in flight finish, then saying goodbye to the
// websocket clients (main.go's shutdown order; ws.Server.Close: "1001
// (going away) after what is queued for it"), and a desktop client that
// gets 1001 reconnects and keeps its sessions (docs/protocol.md). An open
// that the node is granting when SIGTERM comes must therefore either be
// answered, or not happen. Here the node grants the session in Redis, the
// client never hears of it, and the orphan holds a seat until its lease
// runs out.
func TestReview3StoppingNodeFinishesTheOpenInFlight(t *testing.T) {
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

// TestReview3AcceptedHeartbeatKeepsAHealthyConnection: docs/configuration.md
// says only that -heartbeat "Must be shorter than the lease", and the node
// accepts 25 s against a 30 s lease. With such a setting the client library
// gives up a healthy connection at its first heartbeat tick (no ack for
// more than three quarters of the lease, because none was due yet), before
// it ever sends a heartbeat, and so reconnects once per heartbeat period.
func TestReview3AcceptedHeartbeatKeepsAHealthyConnection(t *testing.T) {
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
