package broker

import (
	"context"
	"sync"
	"time"

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

func newHub(b *Broker) *Hub {
	return &Hub{b: b, done: make(chan struct{}), watchers: map[string]map[*watcher]struct{}{},
		ready: map[string]chan struct{}{}}
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
	h.mu.Unlock()
	ch := ps.ChannelWithSubscriptions(redis.WithChannelSize(1024))
	for {
		select {
		case <-ctx.Done():
			h.Close()
			return
		case <-h.done:
			return
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
				h.dispatch(ctx, msg.Channel, msg.Payload)
			}
		}
	}
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
	for _, e := range batch.Events {
		ev := Event{Account: batch.Account, Type: e.Type}
		switch e.Type {
		case "session":
			if e.Session == nil {
				continue
			}
			s := view(*e.Session, h.b.Now(ctx, batch.Account))
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
