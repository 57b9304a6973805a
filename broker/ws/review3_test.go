package ws_test

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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
