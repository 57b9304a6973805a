package client

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/seatbroker/seatbroker/broker/protocol"
)

const (
	// writeWait bounds every write.
	writeWait = 10 * time.Second
	// helloWait bounds the wait for the welcome when no ctx does.
	helloWait = 15 * time.Second
	// maxServerMessage is the client's read limit: a heartbeat_ack for
	// many sessions, or a denial listing them, is larger than a request.
	maxServerMessage = 1 << 20
	// minHeartbeat keeps a misconfigured server from making the client
	// spin.
	minHeartbeat = 10 * time.Millisecond
)

// link is one websocket connection. Writes go through send, one at a
// time; the run loop's goroutine is its only reader.
type link struct {
	ws   *websocket.Conn
	wmu  sync.Mutex    // serializes writes
	lost chan struct{} // closed when the reader has stopped
	// welcomed is when the welcome came (the hello renewed the seats
	// then); set before the link is served, then only read.
	welcomed time.Time
}

func (l *link) send(m protocol.ClientMessage) error {
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if err := l.ws.SetWriteDeadline(time.Now().Add(writeWait)); err != nil {
		return err
	}
	return l.ws.WriteMessage(websocket.TextMessage, data)
}

// shut says goodbye and closes the socket, which ends the reader.
func (l *link) shut(code int, text string) {
	l.wmu.Lock()
	_ = l.ws.SetWriteDeadline(time.Now().Add(time.Second))
	_ = l.ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(code, text))
	l.wmu.Unlock()
	_ = l.ws.Close()
}

// fatal errors stop the client: trying again cannot help.
func fatal(err error) bool {
	switch CodeOf(err) {
	case protocol.CodeUnauthorized, protocol.CodeInvalidRequest, protocol.CodeForbidden, protocol.CodeUserBlocked:
		return true
	}
	return false
}

// connect dials, says hello with the sessions the client holds, and reads
// the welcome. On success the link is live.
func (c *Client) connect(ctx context.Context) (*link, error) {
	c.mu.Lock()
	tok, url := c.token, c.urls[c.at]
	// the sessions to take back: a desktop side's with their fencing
	// tokens, a remote side's with its rejoin secret
	refs := c.refsLocked()
	c.mu.Unlock()
	hdr := http.Header{}
	for k, v := range c.opts.Header {
		hdr[k] = append([]string(nil), v...)
	}
	if c.opts.Role == RoleDesktop && tok != "" {
		hdr.Set("Authorization", "Bearer "+tok)
	}
	wsc, resp, err := c.opts.Dialer.DialContext(ctx, url, hdr)
	if err != nil {
		if resp != nil && resp.StatusCode == http.StatusUnauthorized {
			_ = resp.Body.Close()
			c.dropToken(tok)
			return nil, &Error{Detail: protocol.ErrorDetail{Code: protocol.CodeUnauthorized, Message: "the token was refused"}}
		}
		if resp != nil {
			_ = resp.Body.Close()
		}
		return nil, err
	}
	wsc.SetReadLimit(maxServerMessage)
	l := &link{ws: wsc, lost: make(chan struct{})}
	hello := protocol.ClientMessage{Type: protocol.TypeHello, ID: "hello", Version: protocol.Version, Role: c.opts.Role,
		DeviceID: c.opts.DeviceID, DeviceName: c.opts.DeviceName, Sessions: refs}
	if c.opts.Role == RoleDesktop && tok == "" {
		hello.Account, hello.Name, hello.Password = c.opts.Account, c.opts.Name, c.opts.Password
	}
	if c.opts.Role == RoleRemote {
		hello.Name = c.opts.Name
	}
	welcome, err := c.greet(ctx, l, hello)
	if err != nil {
		_ = wsc.Close()
		if CodeOf(err) == protocol.CodeUnauthorized {
			c.dropToken(tok)
		}
		return nil, err
	}
	l.welcomed = time.Now()
	c.mu.Lock()
	if welcome.Token != "" {
		c.token = welcome.Token
	}
	if welcome.User != nil {
		c.user = *welcome.User
	}
	c.heartbeat = max(minHeartbeat, time.Duration(welcome.HeartbeatMS)*time.Millisecond)
	c.lease = time.Duration(welcome.LeaseMS) * time.Millisecond
	c.mu.Unlock()
	c.statuses(welcome.Sessions)
	c.mu.Lock()
	c.link = l
	close(c.up)
	c.mu.Unlock()
	return l, nil
}

// dropToken forgets a refused token so that the next attempt signs in
// with the password, if the client has one.
func (c *Client) dropToken(tok string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if tok != "" && c.token == tok && c.opts.Password != "" {
		c.token = ""
	}
}

// greet sends hello and waits for welcome (or the error that answers it).
func (c *Client) greet(ctx context.Context, l *link, hello protocol.ClientMessage) (protocol.ServerMessage, error) {
	deadline := time.Now().Add(helloWait)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := l.ws.SetReadDeadline(deadline); err != nil {
		return protocol.ServerMessage{}, err
	}
	stop := context.AfterFunc(ctx, func() { _ = l.ws.SetReadDeadline(time.Now()) })
	defer stop()
	if err := l.send(hello); err != nil {
		return protocol.ServerMessage{}, err
	}
	for {
		_, data, err := l.ws.ReadMessage()
		if err != nil {
			if ctx.Err() != nil {
				return protocol.ServerMessage{}, ctx.Err()
			}
			return protocol.ServerMessage{}, err
		}
		m, err := protocol.DecodeServer(data)
		if err != nil {
			continue // a newer server's message: not ours to read
		}
		switch {
		case m.Type == protocol.TypeWelcome:
			return m, l.ws.SetReadDeadline(time.Time{})
		case m.Type == protocol.TypeError && m.ID == hello.ID:
			return protocol.ServerMessage{}, &Error{Detail: detailOf(m)}
		}
	}
}

func detailOf(m protocol.ServerMessage) protocol.ErrorDetail {
	if m.Error == nil {
		return protocol.ErrorDetail{Code: protocol.CodeInternal, Message: "the server sent an error without detail"}
	}
	return *m.Error
}

// run serves connections until Close, reconnecting a desktop client.
func (c *Client) run(ctx context.Context, l *link) {
	defer c.wg.Done()
	var stopErr error
	defer func() {
		select {
		case <-c.done:
			// closed, not stopped: Close ends the events itself
			stopErr = nil
		default:
		}
		c.mu.Lock()
		c.stopErr = stopErr
		close(c.stopped)
		c.mu.Unlock()
		if stopErr != nil {
			c.events.push(Stopped{Err: stopErr})
			c.events.finish()
		}
	}()
	for {
		err := c.serve(l)
		select {
		case <-c.done:
			return
		default:
		}
		c.events.push(Disconnected{Err: err})
		// the node may be dying (a 1001 says it is): come back to another
		c.moveOn()
		if c.opts.NoReconnect || (c.opts.Role == RoleRemote && len(c.Sessions()) == 0) {
			// a remote side comes back only to the session it joined,
			// with the rejoin secret the join gave it. The sessions are
			// not lost: the broker holds them until their leases run out,
			// and Sessions keeps them for a client that takes them back
			stopErr = ErrDisconnected
			return
		}
		l, err = c.reconnect(ctx)
		if err != nil {
			stopErr = err
			return
		}
		select {
		case <-c.done:
			// Close came while the link was being made, and may have
			// looked for it before it was live: it is not served
			l.shut(websocket.CloseNormalClosure, "client closing")
			return
		default:
		}
		if c.opts.Role == RoleRemote && len(c.Sessions()) == 0 {
			// its session ended, or cannot be taken back: nothing to stay for
			l.shut(websocket.CloseNormalClosure, "no session")
			stopErr = ErrDisconnected
			return
		}
		c.events.push(Reconnected{Sessions: c.Sessions()})
	}
}

// reconnect tries again with jittered, growing waits, never longer than a
// quarter of the lease, until it connects, Close is called, or the broker
// refuses the client for good.
func (c *Client) reconnect(ctx context.Context) (*link, error) {
	for attempt := 0; ; attempt++ {
		c.mu.Lock()
		ceiling := c.opts.MaxBackoff
		if c.lease > 0 {
			ceiling = min(ceiling, max(c.opts.MinBackoff, c.lease/4))
		}
		c.mu.Unlock()
		t := time.NewTimer(backoff(attempt, c.opts.MinBackoff, ceiling))
		select {
		case <-c.done:
			t.Stop()
			return nil, ErrClosed
		case <-t.C:
		}
		c.mu.Lock()
		withToken := c.token != ""
		c.mu.Unlock()
		actx, cancel := context.WithTimeout(ctx, helloWait)
		l, err := c.connect(actx)
		cancel()
		if err == nil {
			return l, nil
		}
		c.moveOn()
		// a refused token (revoked, expired) is dropped and the password
		// tried; a refused password (changed since) stops the client,
		// rather than fail sign-ins for ever under the user's name
		if fatal(err) && !(CodeOf(err) == protocol.CodeUnauthorized && withToken && c.canSignIn()) {
			return nil, err
		}
	}
}

// moveOn makes the next address (Options.Addresses) the one to connect
// to.
func (c *Client) moveOn() {
	c.mu.Lock()
	c.at = (c.at + 1) % len(c.urls)
	c.mu.Unlock()
}

func (c *Client) canSignIn() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.token == "" && c.opts.Password != ""
}

// backoff is the wait before attempt n: exponential from lo, capped at
// hi, with full jitter in its upper half so clients that lost one node
// together do not come back together.
func backoff(n int, lo, hi time.Duration) time.Duration {
	d := lo
	for i := 0; i < n && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	return d/2 + rand.N(d/2+1)
}

// serve reads one connection until it is lost, with a heartbeat loop
// beside it.
func (c *Client) serve(l *link) error {
	hbDone := make(chan struct{})
	go func() {
		defer close(hbDone)
		c.heartbeats(l)
	}()
	var err error
	for {
		var data []byte
		_, data, err = l.ws.ReadMessage()
		if err != nil {
			break
		}
		m, derr := protocol.DecodeServer(data)
		if derr != nil {
			continue
		}
		c.handle(m)
	}
	c.mu.Lock()
	if c.link == l {
		c.link = nil
		c.up = make(chan struct{})
	}
	c.mu.Unlock()
	close(l.lost)
	_ = l.ws.Close()
	<-hbDone
	var ce *websocket.CloseError
	if errors.As(err, &ce) && ce.Code == websocket.CloseNormalClosure {
		return nil
	}
	return err
}

// heartbeats sends one every period the server gave, and gives the
// connection up, so that a reconnect can still renew the seats in time,
// once both:
//
//   - no ack came for three quarters of the lease (since the welcome at
//     first), which leaves the last quarter for the reconnect, whose hello
//     renews the seats before they run out;
//   - a heartbeat sent since has gone unanswered for an eighth of the
//     lease (ackWait).
//
// With the default ratio (a third) the first is what counts. The second
// matters when the server sets a heartbeat longer than five eighths of the
// lease, which it may (it only asks for less than the lease): no ack is
// due for most of the lease then, and a healthy connection must not be
// given up before its next one was.
//
// Only acks count: they alone say the seats were renewed, and other
// messages can come from a node that no longer reads what the client
// sends. The deadline is a timer of its own, on the monotonic clock, not
// a look at the next tick: with the default ratio the tick after it comes
// when the lease runs out, too late for the reconnect.
func (c *Client) heartbeats(l *link) {
	c.mu.Lock()
	period, lease := c.heartbeat, c.lease
	c.mu.Unlock()
	t := time.NewTicker(period)
	defer t.Stop()
	acks := make(chan struct{}, 1)
	c.setAckSink(acks)
	defer c.setAckSink(nil)
	silence, ackWait := lease*3/4, lease/8
	lastAck := l.welcomed
	var asked time.Time // when the first heartbeat since lastAck went; zero if none
	deadline := time.NewTimer(0)
	deadline.Stop()
	defer deadline.Stop()
	// arm sets the deadline; nothing is due while no heartbeat waits
	arm := func() {
		if lease <= 0 || asked.IsZero() {
			deadline.Stop()
			return
		}
		at := lastAck.Add(silence)
		if w := asked.Add(ackWait); w.After(at) {
			at = w
		}
		deadline.Reset(time.Until(at))
	}
	acked := func() {
		lastAck, asked = time.Now(), time.Time{}
		arm()
	}
	for {
		select {
		case <-l.lost:
			return
		case <-c.done:
			return
		case <-acks:
			acked()
		case <-deadline.C:
			select {
			case <-acks: // it came with the deadline
				acked()
				continue
			default:
			}
			_ = l.ws.Close() // the reader ends, run reconnects
			return
		case <-t.C:
			if err := l.send(protocol.ClientMessage{Type: protocol.TypeHeartbeat, ID: "hb"}); err != nil {
				_ = l.ws.Close()
				return
			}
			if asked.IsZero() {
				asked = time.Now()
				arm()
			}
		}
	}
}
