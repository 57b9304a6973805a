package broker

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/seatbroker/seatbroker/broker/protocol"
)

// Event types a Watch delivers.
const (
	// EventSession: a session changed; Session is set.
	EventSession = "session"
	// EventUser: a user changed (blocked, limits, permissions).
	EventUser = "user"
	// EventAccount: settings or balance changed.
	EventAccount = "account"
	// EventBalance: PPU minutes were billed: the balance changed, and
	// nothing else of the account.
	EventBalance = "balance"
	// EventWarning: a warning (low PPU balance); Warning is set.
	EventWarning = "warning"
	// EventTokens: tokens of a user were revoked (UserID); connections
	// signed in with one of them are closed.
	EventTokens = "tokens"
	// EventResync: events may have been missed (the node's Redis
	// subscription was re-established); re-read the state.
	EventResync = "resync"
)

// Event is one change of an account, as every node sees it.
type Event struct {
	Account string
	Type    string
	// Session is the changed session (CanControl not set: it depends on
	// the viewer).
	Session *protocol.Session
	// UserID names the changed user of a user event; re-read it (and the
	// permissions that follow from it) through the broker.
	UserID  string
	Warning *Warning
}

// Warning is a warning to an account's admins and PPU clients.
type Warning struct {
	Code      string `json:"code"`
	Balance   int64  `json:"balance"`
	Threshold int64  `json:"threshold"`
}

// watchBuffer is how many events a slow watcher may fall behind before it
// is sent a resync instead of the events it missed.
const watchBuffer = 256

type watcher struct {
	ch     chan Event
	lagged bool // guarded by Hub.mu
}

// Hub carries the events of accounts from Redis pub/sub to this node's
// watchers (websocket connections, page streams). It subscribes to an
// account's channel while the node has a watcher of that account.
type Hub struct {
	b    *Broker
	done chan struct{}
	once sync.Once
	// probe is the channel the node sends itself a message on every
	// probeEvery, seen when one came back (unix ns), and renew asks Run
	// for a new subscription when one did not: see probeLoop.
	probe string
	seen  atomic.Int64
	renew chan struct{}

	mu       sync.Mutex
	ps       *redis.PubSub                    // guarded by mu
	watchers map[string]map[*watcher]struct{} // account -> watchers; guarded by mu
	// ready: account -> closed once Redis confirmed the subscription to its
	// channel (absent: confirmed); guarded by mu
	ready map[string]chan struct{}
}

// subscribeWait bounds how long Watch waits for Redis to confirm a new
// subscription: events published before it are not delivered.
const subscribeWait = 5 * time.Second

// A subscription is probed: a link to Redis can go half-open (a NAT or
// firewall that lost its state, a Redis host that vanished) and deliver
// nothing, with nothing to say so for as long as TCP retries (up to ~15
// min), while the node's other connections are made anew and work.
const (
	// probeEvery is how often the node sends itself a probe.
	probeEvery = time.Second
	// probeWait is how long a probe that Redis took may take to come back
	// before the subscription is given up and taken again.
	probeWait = 3 * time.Second
)

func newHub(b *Broker) *Hub {
	return &Hub{b: b, done: make(chan struct{}), watchers: map[string]map[*watcher]struct{}{},
		ready: map[string]chan struct{}{}, probe: b.store.Keys().Probe(uuid.NewString()),
		renew: make(chan struct{}, 1)}
}

func (h *Hub) pubsub(ctx context.Context) *redis.PubSub {
	if h.ps == nil {
		h.ps = h.b.store.Subscribe(ctx)
	}
	return h.ps
}

// Watch delivers the events of acct until cancel is called. The channel is
// closed after cancel. It returns once Redis has confirmed the node's
// subscription to the account (or after subscribeWait): every event
// published after Watch returns is delivered.
func (b *Broker) Watch(ctx context.Context, acct string) (<-chan Event, func(), error) {
	ch, cancel, ready, err := b.watch(ctx, acct)
	if err != nil {
		return nil, nil, err
	}
	if ready != nil {
		t := time.NewTimer(subscribeWait)
		defer t.Stop()
		select {
		case <-ready:
		case <-t.C:
		case <-ctx.Done():
			cancel()
			return nil, nil, ctx.Err()
		}
	}
	return ch, cancel, nil
}

// watch adds a watcher of acct, subscribing the node when it is the
// account's first; ready is non-nil while Redis has not confirmed that
// subscription.
func (b *Broker) watch(ctx context.Context, acct string) (<-chan Event, func(), chan struct{}, error) {
	h := b.hub
	w := &watcher{ch: make(chan Event, watchBuffer)}
	h.mu.Lock()
	defer h.mu.Unlock()
	select {
	case <-h.done:
		return nil, nil, nil, ErrUnavailable
	default:
	}
	set := h.watchers[acct]
	if set == nil {
		h.ready[acct] = make(chan struct{})
		if err := h.pubsub(ctx).Subscribe(ctx, b.store.Keys().Channel(acct)); err != nil {
			delete(h.ready, acct)
			return nil, nil, nil, storeErr(err)
		}
		set = map[*watcher]struct{}{}
		h.watchers[acct] = set
	}
	set[w] = struct{}{}
	var once sync.Once
	cancel := func() {
		once.Do(func() {
			h.mu.Lock()
			defer h.mu.Unlock()
			if set, ok := h.watchers[acct]; ok {
				if _, ok := set[w]; ok {
					delete(set, w)
					close(w.ch)
				}
				if len(set) == 0 {
					delete(h.watchers, acct)
					delete(h.ready, acct)
					if h.ps != nil {
						// best effort: an extra subscription costs only traffic
						_ = h.ps.Unsubscribe(context.WithoutCancel(ctx), b.store.Keys().Channel(acct))
					}
				}
			}
		})
	}
	return w.ch, cancel, h.ready[acct], nil
}

// Run reads the node's subscription until ctx is done or Close.
func (h *Hub) Run(ctx context.Context) {
	h.mu.Lock()
	select {
	case <-h.done:
		h.mu.Unlock()
		return // closed before it started: open no subscription
	default:
	}
	ps := h.pubsub(ctx)
	// recorded even if it fails: go-redis subscribes again when it
	// reconnects
	_ = ps.Subscribe(ctx, h.probe)
	ch := ps.ChannelWithSubscriptions(redis.WithChannelSize(1024))
	h.mu.Unlock()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); h.probeLoop(ctx) }()
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			h.Close()
			return
		case <-h.done:
			return
		case <-h.renew:
			ch = h.resubscribe(ctx)
		case m, ok := <-ch:
			if !ok {
				return
			}
			switch msg := m.(type) {
			case *redis.Subscription:
				if msg.Kind == "subscribe" {
					// resubscribed (after the link to Redis broke): whatever
					// was published meanwhile is lost; a first subscription
					// releases the Watch calls waiting for it
					if acct, ok := h.b.store.Keys().ChannelAccount(msg.Channel); ok && !h.confirmed(acct) {
						h.deliver(Event{Account: acct, Type: EventResync})
					}
				}
			case *redis.Message:
				if msg.Channel == h.probe {
					h.seen.Store(time.Now().UnixNano())
					continue
				}
				h.dispatch(ctx, msg.Channel, msg.Payload)
			}
		}
	}
}

// probeLoop sends the node a probe every probeEvery. When Redis took one
// (so Redis answers) and the subscription has not brought it back within
// probeWait, the subscription delivers nothing: it asks Run for a new one.
func (h *Hub) probeLoop(ctx context.Context) {
	t := time.NewTicker(probeEvery)
	defer t.Stop()
	var sent time.Time // the first probe Redis took since one came back
	for {
		select {
		case <-ctx.Done():
			return
		case <-h.done:
			return
		case <-t.C:
		}
		if !sent.IsZero() && h.seen.Load() >= sent.UnixNano() {
			sent = time.Time{} // it came back
		}
		if !sent.IsZero() && time.Since(sent) > probeWait {
			select {
			case h.renew <- struct{}{}:
			default:
			}
			sent = time.Time{}
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, probeEvery)
		err := h.b.store.Client().Publish(pctx, h.probe, "probe").Err()
		cancel()
		if err == nil && sent.IsZero() {
			sent = time.Now()
		}
	}
}

// resubscribe replaces the node's subscription with a new one to the same
// channels, and returns its channel. Redis confirms each account's channel
// on it, which sends the account's watchers a resync (Run).
func (h *Hub) resubscribe(ctx context.Context) <-chan any {
	h.b.log.Warn("the Redis subscription delivers nothing: subscribing again")
	h.mu.Lock()
	select {
	case <-h.done:
		h.mu.Unlock()
		return nil // closed: Run returns, and no subscription is left open
	default:
	}
	old := h.ps
	chans := []string{h.probe}
	for acct := range h.watchers {
		chans = append(chans, h.b.store.Keys().Channel(acct))
	}
	h.ps = h.b.store.Client().Subscribe(ctx, chans...)
	ch := h.ps.ChannelWithSubscriptions(redis.WithChannelSize(1024))
	h.mu.Unlock()
	_ = old.Close()
	return ch
}

// confirmed releases the watchers waiting for acct's first subscription,
// and says whether there were any (false: a resubscription).
func (h *Hub) confirmed(acct string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	ch, ok := h.ready[acct]
	if ok {
		close(ch)
		delete(h.ready, acct)
	}
	return ok
}

func (h *Hub) dispatch(ctx context.Context, channel, payload string) {
	batch, err := h.b.store.Keys().DecodeEvents(channel, payload)
	if err != nil {
		h.b.log.Warn("undecodable event", "err", err)
		return
	}
	now := h.b.Now(ctx, batch.Account) // one clock read for the batch
	for _, e := range batch.Events {
		ev := Event{Account: batch.Account, Type: e.Type}
		switch e.Type {
		case "session":
			if e.Session == nil {
				continue
			}
			s := view(*e.Session, now)
			ev.Session = &s
		case "user":
			if e.User != nil {
				ev.UserID = e.User.ID
			}
		case "warning":
			ev.Type = EventWarning
			ev.Warning = &Warning{Code: e.Code, Balance: e.Balance, Threshold: e.Threshold}
		case "tokens":
			ev.Type = EventTokens
			ev.UserID = e.UserID
		case "promoted", "account":
			ev.Type = EventAccount
		case "balance":
			ev.Type = EventBalance
		default:
			continue
		}
		h.deliver(ev)
	}
}

func (h *Hub) deliver(ev Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for w := range h.watchers[ev.Account] {
		if w.lagged {
			continue
		}
		select {
		case w.ch <- ev:
		default:
			// never block the hub: the watcher gets a resync when it has room
			w.lagged = true
			go h.resync(w, ev.Account)
		}
	}
}

func (h *Hub) resync(w *watcher, acct string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.watchers[acct][w]; !ok {
		return
	}
	// drop what is queued: the resync replaces it
	for len(w.ch) > 0 {
		<-w.ch
	}
	w.ch <- Event{Account: acct, Type: EventResync}
	w.lagged = false
}

// Close stops Run and ends every watch. It is idempotent.
func (h *Hub) Close() {
	h.once.Do(func() {
		close(h.done)
		h.mu.Lock()
		defer h.mu.Unlock()
		for acct, set := range h.watchers {
			for w := range set {
				close(w.ch)
			}
			delete(h.watchers, acct)
		}
		if h.ps != nil {
			_ = h.ps.Close()
		}
	})
}
