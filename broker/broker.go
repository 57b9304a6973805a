package broker

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seatbroker/seatbroker/broker/internal/rdb"
)

// Broker is one node's handle on the shared state. Any number of brokers,
// in one process or many, may share one Redis: nothing that matters lives
// in a Broker's memory.
type Broker struct {
	cfg    Config
	store  *rdb.Store
	reaper *rdb.Reaper
	hub    *Hub
	log    *slog.Logger

	offset atomic.Int64 // Redis clock (the reaper's: Store.Now) minus this node's clock, ns
	ready  atomic.Bool  // Redis answered the last clock check
	loaded atomic.Bool  // the account code is loaded (loadCode succeeded)
	// clocks is, on a Redis Cluster, each master's clock minus this
	// node's, by address (Store.NodeOf); guarded by clockMu
	clocks  map[string]time.Duration
	clockMu sync.Mutex
	// loadFailed says a load failed and was logged, loadNext when to try
	// again; only clockLoop touches them after Run's first attempt.
	loadFailed bool
	loadNext   time.Time

	closeOnce sync.Once
}

// New returns a broker on client. Call Run to start its background work
// (reaper, events, clock) and Close when done.
func New(client redis.UniversalClient, cfg Config, log *slog.Logger) (*Broker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	st := rdb.New(client, cfg.Prefix, rdb.Defaults{
		Lease: cfg.Lease, Standby: cfg.Standby, Paused: cfg.Paused, Notice: cfg.Notice,
		Minute: cfg.Minute, Retention: cfg.Retention, Warn: cfg.LowBalance, RetainMax: cfg.RetainMax,
	})
	b := &Broker{cfg: cfg, store: st, log: log}
	dummyHash() // made now, not in the first sign-in of an unknown name
	b.reaper = rdb.NewReaper(st, cfg.ReapInterval, cfg.SweepInterval, log)
	b.hub = newHub(b)
	return b, nil
}

// Config returns the broker's configuration.
func (b *Broker) Config() Config { return b.cfg }

// Run runs the reaper, the event hub and the clock check until ctx is done
// or Close is called. Shutdown order: the HTTP server stops taking requests
// first (cmd/seatbroker), then Close stops these loops, then the store's
// batcher, then the Redis client.
func (b *Broker) Run(ctx context.Context) error {
	b.loadCode(ctx)
	b.checkClock(ctx)
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); _ = b.reaper.Run(ctx) }()
	go func() { defer wg.Done(); b.hub.Run(ctx) }()
	go func() { defer wg.Done(); b.clockLoop(ctx) }()
	wg.Wait()
	return nil
}

// Close stops Run's loops and the store. It is idempotent.
func (b *Broker) Close() {
	b.closeOnce.Do(func() {
		b.reaper.Close()
		b.hub.Close()
		b.store.Close()
	})
}

// Ready says whether Redis answered the last clock check (once a second).
func (b *Broker) Ready() bool { return b.ready.Load() }

// Ping checks Redis now.
func (b *Broker) Ping(ctx context.Context) error {
	c := b.store.Client()
	if err := c.Ping(ctx).Err(); err != nil {
		return errors.Join(ErrUnavailable, err)
	}
	// a Redis Cluster node answers PING while the cluster is down (a
	// master lost, its slots served by nobody): ask for the cluster's state
	if cc, ok := c.(*redis.ClusterClient); ok {
		info, err := cc.ClusterInfo(ctx).Result()
		if err != nil {
			return errors.Join(ErrUnavailable, err)
		}
		if !strings.Contains(info, "cluster_state:ok") {
			return errors.Join(ErrUnavailable, errors.New("the Redis Cluster is down (cluster_state is not ok)"))
		}
	}
	return nil
}

func (b *Broker) clockLoop(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.hub.done:
			return
		case <-t.C:
			b.checkClock(ctx)
			if !b.loaded.Load() && b.ready.Load() && time.Now().After(b.loadNext) {
				b.loadCode(ctx)
			}
		}
	}
}

// loadRetry is how often a node whose account code did not load tries
// again, while Redis answers.
const loadRetry = 5 * time.Second

// loadCode loads the scripts and the account library. Until it succeeds
// (Redis was unreachable when the node started) calls run as scripts,
// loaded on first use; the clock loop tries again once Redis answers, so
// the node moves to the function as soon as it can.
func (b *Broker) loadCode(ctx context.Context) {
	if err := b.store.LoadScripts(ctx); err != nil {
		if ctx.Err() == nil && !b.loadFailed {
			b.log.Warn("could not load the account code; calls run as scripts until it loads", "err", err)
		}
		b.loadFailed = true
		b.loadNext = time.Now().Add(loadRetry)
		return
	}
	b.loaded.Store(true)
	if b.store.UsesFunctions() {
		b.log.Info("account state changes run as a Redis function (FCALL)")
	} else {
		b.log.Info("account state changes run as scripts (EVALSHA): this Redis has no functions")
	}
}

// UsesFunctions says whether this node runs the account code as a Redis
// function (else as scripts).
func (b *Broker) UsesFunctions() bool { return b.store.UsesFunctions() }

// checkClock measures the Redis clock: times shown to people (seconds
// left, durations) are computed on it, never on this node's clock. On a
// Redis Cluster it measures every master's, since each account's times are
// its own master's (Now).
func (b *Broker) checkClock(ctx context.Context) {
	cctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	before := time.Now()
	rt, err := b.store.Now(cctx)
	if err != nil {
		if b.ready.Swap(false) {
			b.log.Warn("redis unreachable", "err", err)
		}
		return
	}
	mid := before.Add(time.Since(before) / 2)
	b.offset.Store(int64(rt.Sub(mid)))
	// a master that did not answer keeps its last measure
	offs, _ := b.store.Clocks(cctx)
	if len(offs) > 0 {
		b.clockMu.Lock()
		if b.clocks == nil {
			b.clocks = make(map[string]time.Duration, len(offs))
		}
		for node, off := range offs {
			b.clocks[node] = off
		}
		b.clockMu.Unlock()
	}
	if !b.ready.Swap(true) {
		b.log.Info("redis reachable")
	}
}

// Now returns the time on acct's Redis clock, as last measured (once a
// second): on a Redis Cluster the clock of the master that holds the
// account, which stamps its deadlines, leases and tokens; else the one
// Redis's. A master not measured yet (just promoted) is taken to agree
// with the reaper's clock until the next measure.
func (b *Broker) Now(ctx context.Context, acct string) time.Time {
	off := time.Duration(b.offset.Load())
	if node, err := b.store.NodeOf(ctx, acct); err == nil && node != "" {
		b.clockMu.Lock()
		if o, ok := b.clocks[node]; ok {
			off = o
		}
		b.clockMu.Unlock()
	}
	return time.Now().Add(off)
}

// Until is how long until t, a time on acct's Redis clock (a token's
// expiry), as a duration for this node's timers.
func (b *Broker) Until(ctx context.Context, acct string, t time.Time) time.Duration {
	return t.Sub(b.Now(ctx, acct))
}

// Reap fires due timers now, without waiting for the reaper's tick. Tests
// and tools use it; the reaper calls the same code.
func (b *Broker) Reap(ctx context.Context) (int, error) {
	return b.reaper.Pass(ctx)
}

// storeErr turns a store error into a domain error.
func storeErr(err error) error {
	if err == nil {
		return nil
	}
	var se *rdb.StatusError
	if errors.As(err, &se) {
		if se.Status == rdb.StatusExists && se.Field != "" {
			return taken(se.Field, "is taken already")
		}
		return statusErr(se.Status)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return errors.Join(ErrUnavailable, err)
	}
	if errors.Is(err, rdb.ErrUnexpectedReply) {
		return err
	}
	return errors.Join(ErrUnavailable, err)
}

func statusErr(st rdb.Status) error {
	switch st {
	case rdb.StatusOK:
		return nil
	case rdb.StatusNotFound:
		return ErrNotFound
	case rdb.StatusForbidden:
		return ErrForbidden
	case rdb.StatusUserBlocked:
		return ErrUserBlocked
	case rdb.StatusUserLimit:
		return ErrUserLimit
	case rdb.StatusAccountLimit:
		return ErrAccountLimit
	case rdb.StatusPPUExhausted:
		return ErrPPUExhausted
	case rdb.StatusBadState:
		return invalid("state", "the session is not in a state that allows this")
	case rdb.StatusStale:
		return &StaleError{}
	case rdb.StatusExists:
		return taken("id", "already exists")
	}
	return invalid("", st.String())
}

// StaleError is a renewal or release with a fencing token that is no
// longer the session's: another grant replaced it.
type StaleError struct{}

func (e *StaleError) Error() string {
	return "stale fencing token: this grant was replaced"
}

// Unwrap returns ErrForbidden: a stale holder may not act.
func (e *StaleError) Unwrap() error { return ErrForbidden }
