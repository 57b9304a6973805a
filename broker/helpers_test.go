package broker_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/seatbroker/seatbroker/broker"
	"github.com/seatbroker/seatbroker/broker/protocol"
	"github.com/seatbroker/seatbroker/broker/ws"
	"github.com/seatbroker/seatbroker/client"
	"github.com/seatbroker/seatbroker/internal/brokertest"
	"github.com/seatbroker/seatbroker/internal/testredis"
)

func TestMain(m *testing.M) {
	testredis.Main(m, func() error { return goleak.Find() })
}

// fastConfig is the default config with short durations, for tests.
func fastConfig(prefix string) broker.Config {
	c := broker.DefaultConfig()
	c.Prefix = prefix
	c.Heartbeat = 300 * time.Millisecond
	c.Lease = 1500 * time.Millisecond
	c.Notice = 600 * time.Millisecond
	c.Standby = 800 * time.Millisecond
	c.Paused = 900 * time.Millisecond
	c.Minute = 300 * time.Millisecond
	c.Retention = 2 * time.Second
	c.ReapInterval = 50 * time.Millisecond
	c.SweepInterval = time.Second
	return c
}

// startBroker runs a broker node on client until the test ends.
func startBroker(t *testing.T, client redis.UniversalClient, cfg broker.Config) *broker.Broker {
	t.Helper()
	return brokertest.Start(t, client, cfg)
}

// fixture is an account with an owner, on one broker, for one test.
type fixture struct {
	t     *testing.T
	addr  string // the Redis the broker uses, for snapshots
	b     *broker.Broker
	acct  string
	owner broker.Principal
	ctx   context.Context
}

type setup struct {
	seats int64
	mode  string
	ppu   bool
	cfg   func(*broker.Config)
}

func newFixture(t *testing.T, client redis.UniversalClient, s setup) *fixture {
	t.Helper()
	cfg := fastConfig(testPrefix(t))
	if s.cfg != nil {
		s.cfg(&cfg)
	}
	b := startBroker(t, client, cfg)
	f := accountOn(t, b, s)
	f.addr = clientAddr(client)
	return f
}

func clientAddr(c redis.UniversalClient) string {
	if cl, ok := c.(*redis.Client); ok {
		return cl.Options().Addr
	}
	return ""
}

func accountOn(t *testing.T, b *broker.Broker, s setup) *fixture {
	t.Helper()
	ctx := context.Background()
	acct := "a" + uuid.NewString()[:8]
	_, owner, err := b.CreateAccount(ctx, broker.AccountSpec{ID: acct, Seats: s.seats, Mode: s.mode, PPUEnabled: s.ppu, OwnerName: "owner"})
	require.NoError(t, err)
	p, err := b.PrincipalFor(ctx, acct, owner.ID)
	require.NoError(t, err)
	return &fixture{t: t, b: b, acct: acct, owner: p, ctx: ctx}
}

func (f *fixture) user(name string, maxSeats *int) broker.Principal {
	f.t.Helper()
	u, err := f.b.AddUser(f.ctx, f.owner, broker.UserSpec{Name: name, MaxSeats: maxSeats})
	require.NoError(f.t, err)
	p, err := f.b.PrincipalFor(f.ctx, f.acct, u.ID)
	require.NoError(f.t, err)
	return p
}

func (f *fixture) open(p broker.Principal, device string) (protocol.Grant, error) {
	return f.b.Open(f.ctx, broker.OpenRequest{Account: f.acct, UserID: p.UserID, DeviceID: device, DeviceName: "host-" + device})
}

func (f *fixture) mustOpen(p broker.Principal, device string) protocol.Grant {
	f.t.Helper()
	g, err := f.open(p, device)
	require.NoError(f.t, err)
	return g
}

func (f *fixture) openCode(p broker.Principal, device string) protocol.Grant {
	f.t.Helper()
	g, err := f.b.Open(f.ctx, broker.OpenRequest{Account: f.acct, UserID: p.UserID, DeviceID: device, WithCode: true})
	require.NoError(f.t, err)
	return g
}

func (f *fixture) overview() protocol.Overview {
	f.t.Helper()
	o, err := f.b.OverviewOf(f.ctx, f.acct)
	require.NoError(f.t, err)
	return o
}

func (f *fixture) state(sid string) protocol.Session {
	f.t.Helper()
	s, err := f.b.Session(f.ctx, f.owner, sid)
	require.NoError(f.t, err)
	return s
}

func (f *fixture) waitState(sid, state string, within time.Duration) protocol.Session {
	f.t.Helper()
	var s protocol.Session
	require.Eventually(f.t, func() bool {
		s = f.state(sid)
		return s.State == state
	}, within, 10*time.Millisecond, fmt.Sprintf("session %s never reached %s", sid, state))
	return s
}

func intp(n int) *int { return &n }

// forEachBackend runs a conformance test against the real redis-server and
// against the in-process one that the demo mode uses.
func forEachBackend(t *testing.T, fn func(t *testing.T, client redis.UniversalClient)) {
	for _, be := range testredis.Backends() {
		t.Run(be.Name, func(t *testing.T) {
			t.Parallel()
			fn(t, be.Client(t))
		})
	}
}

func (f *fixture) topUp(minutes int64) int64 {
	f.t.Helper()
	bal, err := f.b.TopUp(f.ctx, f.owner, minutes, "", "test")
	require.NoError(f.t, err)
	return bal
}

func (f *fixture) close(p broker.Principal, sid string) {
	f.t.Helper()
	s, err := f.b.CloseSession(f.ctx, f.acct, p.UserID, p.Name, sid, "")
	require.NoError(f.t, err)
	require.Equal(f.t, protocol.StateEnded, s.State)
}

func (f *fixture) setSeats(n int64) {
	f.t.Helper()
	_, err := f.b.UpdateSettings(f.ctx, f.owner, broker.SettingsPatch{Seats: &n})
	require.NoError(f.t, err)
}

// snapshot reads every key of the test's prefix with its value, to show
// that a refused request changed nothing.
func (f *fixture) snapshot() map[string]string {
	f.t.Helper()
	c := redis.NewClient(&redis.Options{Addr: f.addr})
	defer c.Close()
	out := map[string]string{}
	iter := c.Scan(f.ctx, 0, f.b.Config().Prefix+"*", 1000).Iterator()
	for iter.Next(f.ctx) {
		k := iter.Val()
		if k == f.b.Config().Prefix+":sweep" || k == f.b.Config().Prefix+":sweep:cursor" {
			continue // whose turn it is to sweep, and where: the reapers', come and go
		}
		var v any
		var err error
		switch c.Type(f.ctx, k).Val() {
		case "hash":
			v, err = c.HGetAll(f.ctx, k).Result()
		case "zset":
			v, err = c.ZRangeWithScores(f.ctx, k, 0, -1).Result()
		case "list":
			v, err = c.LRange(f.ctx, k, 0, -1).Result()
		case "set":
			v, err = c.SMembers(f.ctx, k).Result()
		default:
			v, err = c.Get(f.ctx, k).Result()
		}
		require.NoError(f.t, err)
		out[k] = fmt.Sprint(v)
	}
	require.NoError(f.t, iter.Err())
	return out
}

func testPrefix(t *testing.T) string { return testredis.Prefix(t) }

// onRedis is a fixture on the real redis-server only.
func onRedis(t *testing.T, s setup) *fixture {
	t.Helper()
	return newFixture(t, testredis.Client(t), s)
}

// wsNode serves the websocket protocol of f's broker until the test ends
// and returns its address.
func wsNode(t *testing.T, f *fixture) string {
	t.Helper()
	srv := ws.New(f.b, ws.Options{})
	hs := httptest.NewServer(srv)
	t.Cleanup(func() { hs.Close(); srv.Close() })
	return "ws" + strings.TrimPrefix(hs.URL, "http") + protocol.WSPath
}

func wsDial(t *testing.T, url string, opts client.Options) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, url, opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// betweenReapAndRefile is a go-redis hook that, once armed, runs fn once
// just before the reaper's compare-and-set of an account in the global
// timer index (due_set.lua) goes to Redis: the moment between the reaper's
// two round trips (reaping the account, then refiling it), where a GC
// pause, a busy scheduler or a slow link can hold it.
type betweenReapAndRefile struct {
	index string // the global timer index of the test's prefix
	once  sync.Once
	armed chan struct{}
	fn    func() // set before armed is closed
}

func (h *betweenReapAndRefile) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *betweenReapAndRefile) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (h *betweenReapAndRefile) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		// EVALSHA sha 1 <index> <account> <score read> <new score>
		a := cmd.Args()
		if (cmd.Name() == "evalsha" || cmd.Name() == "eval") && len(a) == 7 && a[3] == h.index && a[5] != "" {
			select {
			case <-h.armed:
				h.once.Do(h.fn)
			default:
			}
		}
		return next(ctx, cmd)
	}
}

// brokerHeldInAReap starts a broker on the real redis-server whose reaper
// can be held between reaping an account and refiling it: duringAReap runs
// fn there, at the next reap of an account with timers, and returns once fn
// has run.
func brokerHeldInAReap(t *testing.T, cfg broker.Config) (b *broker.Broker, duringAReap func(fn func())) {
	t.Helper()
	hook := &betweenReapAndRefile{index: cfg.Prefix + ":due", armed: make(chan struct{})}
	rc := redis.NewClient(&redis.Options{Addr: testredis.Addr(t)})
	rc.AddHook(hook)
	t.Cleanup(func() { _ = rc.Close() })
	b = startBroker(t, rc, cfg)
	return b, func(fn func()) {
		t.Helper()
		done := make(chan struct{})
		hook.fn = func() {
			defer close(done)
			fn()
		}
		close(hook.armed)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("the reaper did not refile the account")
		}
	}
}
