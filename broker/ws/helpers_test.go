package ws_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"golang.org/x/crypto/bcrypt"

	"github.com/seatbroker/seatbroker/broker"
	"github.com/seatbroker/seatbroker/broker/protocol"
	"github.com/seatbroker/seatbroker/broker/ws"
	"github.com/seatbroker/seatbroker/client"
	"github.com/seatbroker/seatbroker/internal/testredis"
)

var redisAddr string

// TestMain starts a throwaway redis-server, runs the tests, and fails if
// any goroutine outlives them (connections, watches, clients).
func TestMain(m *testing.M) {
	broker.SetBcryptCost(bcrypt.MinCost)
	broker.SetMinTokenTTL(time.Second) // to watch tokens expire
	gin.SetMode(gin.ReleaseMode)
	srv, err := testredis.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	redisAddr = srv.Addr
	code := m.Run()
	srv.Stop()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

func redisClient(t *testing.T) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: redisAddr, PoolSize: 32})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// fastConfig is the default config with short durations.
func fastConfig(prefix string) broker.Config {
	c := broker.DefaultConfig()
	c.Prefix = prefix
	c.Heartbeat = 100 * time.Millisecond
	c.Lease = 600 * time.Millisecond
	c.Notice = 700 * time.Millisecond
	c.Standby = 10 * time.Second
	c.Paused = 10 * time.Second
	c.Minute = time.Second
	c.Retention = 5 * time.Second
	c.ReapInterval = 50 * time.Millisecond
	c.SweepInterval = time.Second
	return c
}

// roomyLease gives a test whose clients reconnect a lease that a loaded
// machine's late heartbeat does not lose (the -race build, with every
// package's tests at once on two cores, has delayed one by over 500 ms).
func roomyLease(c *broker.Config) {
	c.Heartbeat = 200 * time.Millisecond
	c.Lease = 2 * time.Second
}

// node is one broker node: a broker and its websocket server on loopback.
type node struct {
	b    *broker.Broker
	ws   *ws.Server
	http *httptest.Server
	url  string
	once sync.Once
	stop func()
}

func startNode(t *testing.T, rc redis.UniversalClient, cfg broker.Config, opts ws.Options) *node {
	t.Helper()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	b, err := broker.New(rc, cfg, log)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = b.Run(ctx) }()
	r := gin.New()
	opts.Log = log
	srv := ws.Register(r, b, opts)
	hs := httptest.NewServer(r)
	n := &node{b: b, ws: srv, http: hs, url: "ws" + strings.TrimPrefix(hs.URL, "http") + protocol.WSPath}
	// shutdown order: stop taking requests and connections, then the
	// broker's loops
	n.stop = func() {
		n.once.Do(func() {
			hs.Close()
			srv.Close()
			cancel()
			b.Close()
			wg.Wait()
		})
	}
	t.Cleanup(n.stop)
	return n
}

// account is an account with an owner and one member, and a client token
// for each.
type account struct {
	id        string
	owner     broker.Principal
	ann       broker.Principal
	ownerTok  string
	annTok    string
	annPasswd string
}

func newAccount(t *testing.T, b *broker.Broker, seats int64) account {
	t.Helper()
	ctx := context.Background()
	id := "a" + uuid.NewString()[:8]
	_, owner, err := b.CreateAccount(ctx, broker.AccountSpec{ID: id, Seats: seats, OwnerName: "owner"})
	require.NoError(t, err)
	op, err := b.PrincipalFor(ctx, id, owner.ID)
	require.NoError(t, err)
	u, err := b.AddUser(ctx, op, broker.UserSpec{Name: "ann"})
	require.NoError(t, err)
	ap, err := b.PrincipalFor(ctx, id, u.ID)
	require.NoError(t, err)
	require.NoError(t, b.SetPassword(ctx, op, u.ID, "ann-password", ""))
	ot, err := b.IssueToken(ctx, op, time.Hour, "test")
	require.NoError(t, err)
	at, err := b.IssueToken(ctx, ap, time.Hour, "test")
	require.NoError(t, err)
	return account{id: id, owner: op, ann: ap, ownerTok: ot.Token, annTok: at.Token, annPasswd: "ann-password"}
}

func inUse(t *testing.T, b *broker.Broker, acct string) int64 {
	t.Helper()
	o, err := b.OverviewOf(context.Background(), acct)
	require.NoError(t, err)
	return o.InUse
}

func sessionOf(t *testing.T, b *broker.Broker, p broker.Principal, sid string) protocol.Session {
	t.Helper()
	s, err := b.Session(context.Background(), p, sid)
	require.NoError(t, err)
	return s
}

func dial(t *testing.T, url string, opts client.Options) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, url, opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func desktop(tok, device string) client.Options {
	return client.Options{Token: tok, DeviceID: device, DeviceName: "host-" + device, MinBackoff: 20 * time.Millisecond}
}

// waitFor reads events until one of type T arrives, and fails after
// within or if the channel closes first.
func waitFor[T client.Event](t *testing.T, ch <-chan client.Event, within time.Duration) T {
	t.Helper()
	timer := time.NewTimer(within)
	defer timer.Stop()
	for {
		select {
		case e, ok := <-ch:
			if !ok {
				var zero T
				t.Fatalf("events closed before a %T came", zero)
			}
			if v, ok := e.(T); ok {
				return v
			}
		case <-timer.C:
			var zero T
			t.Fatalf("no %T within %v", zero, within)
		}
	}
}

// proxy forwards TCP connections to a target (a node, or Redis) and fails
// them as networks do: cut closes every open connection with no goodbye;
// freeze makes the open ones silently drop everything both ways (a
// half-open connection: a dead NAT entry, a hung node) while new ones
// work; refuse(true) also turns new connections away until refuse(false).
type proxy struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup

	mu      sync.Mutex
	conns   []*proxyConn // guarded by mu
	refused bool         // guarded by mu
}

type proxyConn struct {
	in, out net.Conn
	frozen  atomic.Bool
}

func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &proxy{ln: ln, target: target}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() { _ = ln.Close(); p.cut(); p.wg.Wait() })
	return p
}

func (p *proxy) url() string  { return "ws://" + p.ln.Addr().String() + protocol.WSPath }
func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		refused := p.refused
		p.mu.Unlock()
		if refused {
			_ = in.Close()
			continue
		}
		out, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = in.Close()
			continue
		}
		c := &proxyConn{in: in, out: out}
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

func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.in.Close()
		_ = c.out.Close()
	}
	p.conns = nil
}

func (p *proxy) freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.frozen.Store(true)
	}
}

// refuse turns new connections away (and cuts the open ones), or takes
// them again.
func (p *proxy) refuse(on bool) {
	p.mu.Lock()
	p.refused = on
	p.mu.Unlock()
	if on {
		p.cut()
	}
}

// brokerAll lists every session, ended ones too.
func brokerAll() broker.SessionFilter {
	return broker.SessionFilter{States: []string{protocol.StateStandby, protocol.StateActive, protocol.StatePaused,
		protocol.StateTerminating, protocol.StateEnded}}
}

// stateOf is a session's state, or the error reading it (for conditions
// that run outside the test's goroutine).
func stateOf(b *broker.Broker, p broker.Principal, sid string) string {
	s, err := b.Session(context.Background(), p, sid)
	if err != nil {
		return "error: " + err.Error()
	}
	return s.State
}
