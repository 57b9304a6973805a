package ws

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"

	"github.com/seatbroker/seatbroker/broker"
	"github.com/seatbroker/seatbroker/broker/protocol"
)

// conn is one websocket connection: its reader (readPump, which also runs
// the requests) and its writer (writePump, the only goroutine that writes
// frames other than gorilla's own control replies).
type conn struct {
	s      *Server
	ws     *websocket.Conn
	send   chan []byte   // bounded; never closed
	done   chan struct{} // closed by stop
	ctx    context.Context
	cancel context.CancelFunc
	source string
	// waiting: the connection takes one of source's waiting places
	// (Options.MaxWaitingPerAddress); guarded by Server.mu. (A flag, not
	// the address: "" is an address too.)
	waiting bool

	stopOnce  sync.Once
	closeCode int    // written once before done closes
	closeText string // written once before done closes
	// draining: the node is stopping. The reader reads no new request; the
	// one it is running finishes and is answered, then the connection
	// closes with 1001 (drain).
	draining atomic.Bool

	// Set by the reader before the connection is indexed anywhere, then
	// only read.
	pre        *broker.Principal // authenticated at upgrade
	preToken   string            // the upgrade's bearer token
	preExpires time.Time         // its expiry, on the Redis clock
	pageURL    string            // the License Usage page, absolute on the address the client reached (broker.PageURLFor)
	token      string            // the desktop client's token ("" for remote)
	tokenUser  string            // its user, for revocations
	hello      bool              // reader only
	expiry     *time.Timer       // closes a desktop connection when its token expires; reader only
	role       string
	principal  broker.Principal // desktop
	acct       string
	by         string // who, in "ended by", for a remote close
	deviceID   string
	deviceName string

	mu       sync.Mutex
	sessions map[string]*attached // guarded by mu
	// granting counts the opens and resumes in flight, and held keeps a
	// low-balance warning that came meanwhile: the script that bills a new
	// PPU session's first minute publishes the warning it crosses, which
	// can arrive before the session is attached here (guarded by mu).
	granting int
	held     *broker.Warning
}

// attached is a session the connection takes part in.
type attached struct {
	owner  string // the session's user
	fence  string // the desktop side's fencing token ("" for remote)
	state  string
	kind   string
	notice time.Time // deadline of the last notice sent
}

func newConn(s *Server, wsc *websocket.Conn, source string, pre *broker.Principal) *conn {
	// the connection outlives its HTTP request: its context ends with the
	// connection, not with ServeHTTP's
	ctx, cancel := context.WithCancel(context.Background())
	return &conn{
		s: s, ws: wsc, send: make(chan []byte, s.opts.SendQueue), done: make(chan struct{}),
		ctx: ctx, cancel: cancel, source: source, pre: pre, sessions: map[string]*attached{},
	}
}

// stop ends the connection: the writer flushes what is queued, sends a
// close frame with code (when not 0) and closes the socket, which ends
// the reader. Only the first call counts.
func (c *conn) stop(code int, text string) {
	c.stopOnce.Do(func() {
		c.closeCode, c.closeText = code, text
		close(c.done)
		c.cancel()
	})
}

// drain stops the connection for a node that is stopping, without
// cutting a request short: a request in flight runs to its end and its
// answer goes out (the grant it makes is heard of), then 1001. A reader
// waiting for a frame is woken at once.
func (c *conn) drain() {
	c.draining.Store(true)
	_ = c.ws.NetConn().SetReadDeadline(time.Now())
}

// enqueue queues a message for the writer. A client whose queue is full
// is too slow: it is disconnected rather than allowed to hold anyone up.
func (c *conn) enqueue(m protocol.ServerMessage) {
	data, err := json.Marshal(m)
	if err != nil {
		c.s.log.Error("websocket: cannot encode", "type", m.Type, "err", err)
		return
	}
	select {
	case <-c.done:
		return
	default:
	}
	select {
	case c.send <- data:
	default:
		c.s.log.Warn("websocket: client too slow, disconnecting", "source", c.source)
		c.stop(websocket.ClosePolicyViolation, "too slow: send queue full")
	}
}

func (c *conn) write(typ int, data []byte) error {
	if err := c.ws.SetWriteDeadline(time.Now().Add(writeWait)); err != nil {
		return err
	}
	return c.ws.WriteMessage(typ, data)
}

func (c *conn) writePump() {
	ticker := time.NewTicker(pingPeriod)
	defer func() {
		ticker.Stop()
		_ = c.ws.Close()
		c.s.wg.Done()
	}()
	for {
		select {
		case data := <-c.send:
			if err := c.write(websocket.TextMessage, data); err != nil {
				c.stop(0, "")
				return
			}
		case <-ticker.C:
			if err := c.write(websocket.PingMessage, nil); err != nil {
				c.stop(0, "")
				return
			}
		case <-c.done:
			// what was queued before the stop (an ended) goes out first
			if c.closeCode != websocket.ClosePolicyViolation && !c.flush() {
				return
			}
			if c.closeCode != 0 {
				_ = c.write(websocket.CloseMessage, websocket.FormatCloseMessage(c.closeCode, c.closeText))
			}
			return
		}
	}
}

// flush writes what is queued; false if a write failed.
func (c *conn) flush() bool {
	for {
		select {
		case data := <-c.send:
			if err := c.write(websocket.TextMessage, data); err != nil {
				return false
			}
		default:
			return true
		}
	}
}

func (c *conn) readPump() {
	defer func() {
		c.stop(0, "")
		if c.expiry != nil {
			c.expiry.Stop()
		}
		c.mu.Lock()
		sids := make([]string, 0, len(c.sessions))
		for sid := range c.sessions {
			sids = append(sids, sid)
		}
		c.mu.Unlock()
		c.s.forget(c, c.acct, sids)
		c.s.wg.Done()
	}()
	c.ws.SetReadLimit(maxMessageSize)
	// until a hello succeeds, reads wait no later than helloBy, pongs or
	// not: a connection that is nobody is not kept for long
	// and a remote connection that said hello waits no later than joinBy
	// for a session (join or rejoin): a remote hello alone is nobody too
	helloBy := time.Now().Add(c.s.opts.HelloWait)
	var joinBy time.Time // set when a remote hello succeeds
	// by is the deadline of a connection that is still nobody (zero: none)
	by := func() time.Time {
		switch {
		case !c.hello:
			return helloBy
		case c.role == protocol.RoleRemote && c.acct == "":
			if joinBy.IsZero() {
				joinBy = time.Now().Add(c.s.opts.JoinWait)
			}
			return joinBy
		}
		return time.Time{}
	}
	deadline := func() time.Time {
		d := time.Now().Add(pongWait)
		if b := by(); !b.IsZero() && b.Before(d) {
			return b
		}
		return d
	}
	// the pong handler runs on this goroutine, inside ReadMessage
	c.ws.SetPongHandler(func(string) error { return c.ws.SetReadDeadline(deadline()) })
	for {
		// before the draining check: a drain that comes after it has set
		// the deadline to now, and this does not undo that
		if err := c.ws.SetReadDeadline(deadline()); err != nil {
			return
		}
		if c.draining.Load() {
			c.stop(websocket.CloseGoingAway, "server shutting down")
			return
		}
		typ, data, err := c.ws.ReadMessage()
		if c.draining.Load() {
			// stopped while waiting (drain cut the read short), or a
			// request that came too late: it did not run, the client
			// sends it again after reconnecting
			c.stop(websocket.CloseGoingAway, "server shutting down")
			return
		}
		if err != nil {
			// gorilla answered an oversized frame with 1009 already
			var ne net.Error
			if b := by(); !b.IsZero() && errors.As(err, &ne) && ne.Timeout() && !time.Now().Before(b) {
				if !c.hello {
					c.stop(websocket.ClosePolicyViolation, fmt.Sprintf("no hello within %v", c.s.opts.HelloWait))
				} else {
					c.stop(websocket.ClosePolicyViolation, fmt.Sprintf("no session joined within %v", c.s.opts.JoinWait))
				}
			}
			return
		}
		if typ != websocket.TextMessage {
			c.enqueue(errorMsg("", protocol.ErrorDetail{Code: protocol.CodeInvalidRequest,
				Message: "only text frames carry messages", Field: "type"}))
			continue
		}
		m, err := protocol.DecodeClient(data)
		if err != nil {
			d := protocol.ErrorDetail{Code: protocol.CodeInvalidRequest, Message: err.Error()}
			if de, ok := err.(*protocol.DecodeError); ok {
				d = de.Detail()
			}
			c.enqueue(errorMsg(requestID(data), d))
			continue
		}
		c.handle(m)
		select {
		case <-c.done:
			return
		default:
		}
	}
}

// expireAt closes the connection with 1008 when the token it signed in
// with expires (at exp, on the Redis clock): the token is not checked
// again otherwise, unless it is revoked.
func (c *conn) expireAt(exp time.Time) {
	if c.expiry != nil {
		c.expiry.Stop()
	}
	c.expiry = time.AfterFunc(c.s.b.Until(c.ctx, c.acct, exp), func() {
		c.stop(websocket.ClosePolicyViolation, "unauthorized: the token expired")
	})
}

// requestID digs the id out of a message that did not decode, so the
// error can still name the request. A frame that is not UTF-8 names none
// (docs/protocol.md): encoding/json would read it, bad bytes replaced.
func requestID(data []byte) string {
	var v struct {
		ID string `json:"id"`
	}
	if !utf8.Valid(data) || json.Unmarshal(data, &v) != nil || len(v.ID) > 64 {
		return ""
	}
	return v.ID
}

func errorMsg(id string, d protocol.ErrorDetail) protocol.ServerMessage {
	return protocol.ServerMessage{Type: protocol.TypeError, ID: id, Error: &d}
}

// attach adds a session to the connection, then to the node's index, so
// an event never finds it indexed but unknown.
func (c *conn) attach(sid string, a *attached) {
	c.mu.Lock()
	c.sessions[sid] = a
	c.mu.Unlock()
	c.s.index(c, sid)
}

func (c *conn) detach(sid string) bool {
	c.mu.Lock()
	_, ok := c.sessions[sid]
	delete(c.sessions, sid)
	c.mu.Unlock()
	if ok {
		c.s.unindex(c, sid)
	}
	return ok
}

func (c *conn) attachedCopy(sid string) (attached, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	a, ok := c.sessions[sid]
	if !ok {
		return attached{}, false
	}
	return *a, true
}

// onSession delivers a change of one of the connection's sessions: a
// notice while it is terminating (once per deadline), ended (after which
// nothing more is sent about it), or the new state.
func (c *conn) onSession(s protocol.Session) {
	c.mu.Lock()
	a, ok := c.sessions[s.ID]
	if !ok {
		c.mu.Unlock()
		return
	}
	var msg *protocol.ServerMessage
	switch s.State {
	case protocol.StateTerminating:
		if n := c.s.notice(c.ctx, c.acct, s); n != nil && !a.notice.Equal(n.Deadline) {
			a.notice = n.Deadline
			msg = &protocol.ServerMessage{Type: protocol.TypeNotice, SessionID: s.ID, Notice: n, Session: &s}
		}
		a.state = s.State
	case protocol.StateEnded:
		msg = &protocol.ServerMessage{Type: protocol.TypeEnded, SessionID: s.ID, Reason: s.Reason, Session: &s}
	default:
		if a.state != s.State || a.kind != s.Kind {
			a.state, a.kind = s.State, s.Kind
			msg = &protocol.ServerMessage{Type: protocol.TypeSession, SessionID: s.ID, Session: &s}
		}
	}
	c.mu.Unlock()
	if msg == nil {
		return
	}
	if s.State == protocol.StateEnded {
		c.ended(*msg)
		return
	}
	c.enqueue(*msg)
}

// ended sends an ended message once and detaches the session; a remote
// connection, whose only session it was, then closes normally.
func (c *conn) ended(msg protocol.ServerMessage) {
	if !c.detach(msg.SessionID) {
		if msg.ID == "" {
			return // told already
		}
	}
	c.enqueue(msg)
	if c.role == protocol.RoleRemote {
		c.stop(websocket.CloseNormalClosure, "session ended")
	}
}

// onWarning passes a low-balance warning to desktop connections that hold
// a PPU session.
func (c *conn) onWarning(w broker.Warning) {
	if c.role != protocol.RoleDesktop {
		return
	}
	c.mu.Lock()
	ppu := false
	for _, a := range c.sessions {
		ppu = ppu || a.kind == protocol.KindPPU
	}
	if !ppu && c.granting > 0 {
		c.held = &w // for the grant in flight, if it is on PPU (grantEnd)
	}
	c.mu.Unlock()
	if !ppu {
		return
	}
	c.sendWarning(w)
}

// grantBegin and grantEnd bracket an open or a resume. A warning that came
// while it was in flight goes out after the grant when the grant is on
// PPU; g is nil for a refusal.
func (c *conn) grantBegin() {
	c.mu.Lock()
	c.granting++
	c.mu.Unlock()
}

func (c *conn) grantEnd(g *protocol.Grant) {
	c.mu.Lock()
	c.granting--
	var w *broker.Warning
	if g != nil && g.Session.Kind == protocol.KindPPU {
		w, c.held = c.held, nil
	}
	if c.granting == 0 {
		c.held = nil
	}
	c.mu.Unlock()
	if w != nil {
		c.sendWarning(*w)
	}
}

func (c *conn) sendWarning(w broker.Warning) {
	c.enqueue(protocol.ServerMessage{Type: protocol.TypeWarning, Warning: &protocol.Warning{
		Code: w.Code, Balance: w.Balance, Threshold: w.Threshold,
		Message: "the pay-per-use balance is low",
	}})
}

// refresh reads every session of the connection again and delivers what
// changed (after a lost pub/sub message, or right after a join).
func (c *conn) refresh() {
	c.mu.Lock()
	type item struct{ id, owner string }
	var items []item
	for sid, a := range c.sessions {
		items = append(items, item{sid, a.owner})
	}
	c.mu.Unlock()
	// past a lease the client's own heartbeat (or its absence) decides
	until := time.Now().Add(c.s.b.Config().Lease)
	for _, it := range items {
		wait := refreshWait
		for {
			ctx, cancel := context.WithTimeout(c.ctx, requestTimeout)
			s, err := c.s.b.OwnSession(ctx, c.acct, it.owner, it.id)
			cancel()
			if err == nil {
				c.onSession(s)
				break
			}
			if isNotFound(err) {
				c.ended(protocol.ServerMessage{Type: protocol.TypeEnded, SessionID: it.id, Reason: protocol.ReasonGone})
				break
			}
			if !errors.Is(err, broker.ErrUnavailable) {
				break
			}
			// Redis did not answer: it may be loading its data after a
			// restart (it takes subscriptions before it serves reads), or a
			// connection of the pool was dead. What was missed would
			// otherwise wait for the client's next heartbeat
			if time.Now().Add(wait).After(until) {
				return
			}
			t := time.NewTimer(wait)
			select {
			case <-c.done:
				t.Stop()
				return
			case <-t.C:
			}
			wait = min(2*wait, refreshMaxWait)
		}
	}
}

// A refresh whose read fails tries again, for up to a lease, waiting from
// refreshWait up to refreshMaxWait in between.
const (
	refreshWait    = 100 * time.Millisecond
	refreshMaxWait = time.Second
)

// notice is the ending notice of a terminating session of acct, with the
// time left measured on the account's Redis clock.
func (s *Server) notice(ctx context.Context, acct string, sess protocol.Session) *protocol.Notice {
	n := protocol.NoticeOf(sess)
	if n == nil {
		return nil
	}
	n.MSLeft = max(0, n.Deadline.Sub(s.b.Now(ctx, acct)).Milliseconds())
	return n
}
