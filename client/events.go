package client

import (
	"sync"
	"time"

	"github.com/seatbroker/seatbroker/broker/protocol"
)

// Event is something the broker told the client, or a change of the
// connection. It is one of the types below; switch on it.
type Event interface{ event() }

// Granted: a session holds a seat (an open or a resume).
type Granted struct {
	Session protocol.Session
	Fence   string
	Lease   time.Duration
}

// Denied: an open or resume was refused by the seat rules. Error carries
// the code (account_limit, user_limit, ppu_exhausted, user_blocked), a
// sentence, the License Usage page's address and the user's own sessions
// it may end to make room.
type Denied struct {
	Error protocol.ErrorDetail
}

// Joined: the remote side joined a session by its code.
type Joined struct {
	Session protocol.Session
}

// SessionChanged: a session's state or seat kind changed (the remote side
// joined, it was paused, promoted to a prepaid seat).
type SessionChanged struct {
	Session protocol.Session
}

// Notice: a session is being ended. Deadline is on the server's clock;
// use Remaining for a countdown, which runs on this machine's monotonic
// clock from what the server said was left.
type Notice struct {
	SessionID string
	Deadline  time.Time
	// Left is what was left when the server sent the notice.
	Left     time.Duration
	Reason   string
	EndedBy  string
	received time.Time
}

// Remaining is the time left now, never below zero.
func (n Notice) Remaining() time.Duration {
	return max(0, n.Left-time.Since(n.received))
}

// Ended: a session ended; nothing more comes about it.
type Ended struct {
	SessionID string
	Reason    string
	Session   *protocol.Session
}

// Lost: the broker says the client no longer holds a session it had: its
// lease ran out and its record is gone, or another grant replaced its
// fencing token. A lost connection alone is not Lost: the broker holds the
// sessions until their leases run out, and a reconnect (or a new client
// given Sessions) takes them back.
type Lost struct {
	SessionID string
	Error     protocol.ErrorDetail
}

// Warning: a warning from the broker (a low pay-per-use balance).
type Warning struct {
	protocol.Warning
}

// ServerError: an error the server sent that answered no request of the
// client (normally a client bug). An error that answers a request which
// gave up (its ctx ended before the reply came) is not one: that request
// returned ctx's error already, and a refusal changes nothing, so the late
// reply is dropped.
type ServerError struct {
	Error protocol.ErrorDetail
}

// Disconnected: the connection was lost. A desktop client reconnects by
// itself and sends Reconnected; until then requests wait.
type Disconnected struct {
	Err error
}

// Reconnected: the client is connected again, with the sessions it kept.
type Reconnected struct {
	Sessions []protocol.SessionRef
}

// Stopped: the client stopped for good without Close: it cannot connect
// again (its token was revoked and it has no password, or its password
// was refused too: changed since; a remote side's connection ended; a
// lost connection with NoReconnect, ErrDisconnected, ...). Err says why
// (CodeOf gives the code); requests fail with it from now on (with
// ErrClosed once the client is closed). Sessions still lists the sessions
// it held when it stopped. It is the last event: Events
// is closed once it was read. Close the client to release it.
type Stopped struct {
	Err error
}

func (Granted) event()        {}
func (Denied) event()         {}
func (Joined) event()         {}
func (SessionChanged) event() {}
func (Notice) event()         {}
func (Ended) event()          {}
func (Lost) event()           {}
func (Warning) event()        {}
func (ServerError) event()    {}
func (Disconnected) event()   {}
func (Reconnected) event()    {}
func (Stopped) event()        {}

// eventBuffer is the Events channel's buffer: what a reader that comes
// late after Close still finds.
const eventBuffer = 32

// queue carries events from the client's goroutines to the Events channel
// without ever blocking them: events are rare, so the backlog of a slow
// reader stays small.
type queue struct {
	out      chan Event
	signal   chan struct{} // a push happened
	closing  chan struct{} // closed by close
	finished chan struct{} // closed by finish
	done     chan struct{} // closed when the pump has closed out
	once     sync.Once
	finOnce  sync.Once

	mu    sync.Mutex
	items []Event // guarded by mu
}

func newQueue() *queue {
	q := &queue{out: make(chan Event, eventBuffer), signal: make(chan struct{}, 1),
		closing: make(chan struct{}), finished: make(chan struct{}), done: make(chan struct{})}
	go q.pump()
	return q
}

func (q *queue) push(e Event) {
	q.mu.Lock()
	q.items = append(q.items, e)
	q.mu.Unlock()
	select {
	case q.signal <- struct{}{}:
	default:
	}
}

// close stops the queue: what fits in the channel's buffer is still
// delivered, the rest is dropped, and the channel is closed. The pump never
// waits for a reader that is gone.
func (q *queue) close() {
	q.once.Do(func() { close(q.closing) })
	<-q.done
}

// finish ends the queue once everything pushed before it was read; close
// still cuts it short.
func (q *queue) finish() {
	q.finOnce.Do(func() { close(q.finished) })
}

func (q *queue) pump() {
	defer close(q.done)
	defer close(q.out)
	for {
		q.mu.Lock()
		if len(q.items) == 0 {
			q.mu.Unlock()
			select {
			case <-q.signal:
				continue
			case <-q.closing:
				q.drain(nil)
				return
			case <-q.finished:
				q.mu.Lock()
				empty := len(q.items) == 0
				q.mu.Unlock()
				if empty {
					return
				}
			}
		}
		e := q.items[0]
		q.items = q.items[1:]
		q.mu.Unlock()
		select {
		case q.out <- e:
		case <-q.closing:
			q.drain(e)
			return
		}
	}
}

// drain offers e and what is left without waiting.
func (q *queue) drain(e Event) {
	q.mu.Lock()
	rest := q.items
	q.items = nil
	q.mu.Unlock()
	if e != nil {
		rest = append([]Event{e}, rest...)
	}
	for _, e := range rest {
		select {
		case q.out <- e:
		default:
		}
	}
}
