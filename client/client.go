// Package client is seatbroker's Go client: what a desktop application
// embeds to take seats for its remote sessions, and what a remote (the
// customer's) side uses to join a session by its code. It speaks the
// websocket protocol of docs/protocol.md and imports nothing else of the
// server.
//
// A desktop client signs in (a token, or account, user name and
// password), opens sessions (with a code for the remote side to join),
// sends heartbeats that keep its seats, and reconnects by itself with the
// sessions it holds: within the lease the broker gives back the same
// sessions on the same seat. Everything the broker says arrives on
// Events as typed values.
package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/seatbroker/seatbroker/broker/protocol"
)

// Roles of a client.
const (
	RoleDesktop = protocol.RoleDesktop
	RoleRemote  = protocol.RoleRemote
)

// Options configure a client.
type Options struct {
	// Role is RoleDesktop (default) or RoleRemote.
	Role string
	// Token signs a desktop client in. Without it, Account, Name and
	// Password do; the token the server then issues is kept for
	// reconnects (see Client.Token).
	Token    string
	Account  string
	Name     string
	Password string
	// DeviceID (required for a desktop client) names this installation;
	// DeviceName is shown beside it (default: none).
	DeviceID   string
	DeviceName string
	// Sessions are sessions to take back, with their fencing tokens: what
	// an earlier process saved from Client.Sessions. Within their lease
	// they come back on the same seat (desktop only).
	Sessions []protocol.SessionRef
	// Addresses are other broker nodes (as Dial's addr) to fall back on
	// where no load balancer stands before the nodes: when a connection is
	// lost, or a node cannot be reached, the client tries the next address,
	// in turn, so a node that died or stopped does not take the client's
	// sessions with it (default none: the client comes back to addr only).
	Addresses []string
	// Header is added to the upgrade request (tests, proxies).
	Header http.Header
	// Dialer dials the websocket (default websocket.DefaultDialer).
	Dialer *websocket.Dialer
	// NoReconnect turns automatic reconnection off: a lost connection
	// then stops the client (Disconnected, then Stopped with
	// ErrDisconnected). Its sessions are not lost: the broker holds them
	// until their leases run out, so the client reports no Lost and
	// Sessions still lists them, for a new client (Options.Sessions) to
	// take back on the same seat within the lease.
	NoReconnect bool
	// MinBackoff and MaxBackoff bound the jittered wait between reconnect
	// attempts (defaults 100ms and 5s; never more than a quarter of the
	// lease, so a reconnect comes while the seat is still held).
	MinBackoff time.Duration
	MaxBackoff time.Duration
}

// Errors of the client.
var (
	// ErrClosed: the client was closed, or stopped for good.
	ErrClosed = errors.New("client: closed")
	// ErrDisconnected: the connection was lost before the reply came; the
	// request may or may not have taken effect.
	ErrDisconnected = errors.New("client: connection lost")
)

// Error is a refusal from the broker, with its stable code.
type Error struct {
	Detail protocol.ErrorDetail
	// Denied says the seat rules refused it (a denied reply).
	Denied bool
}

func (e *Error) Error() string { return string(e.Detail.Code) + ": " + e.Detail.Message }

// Code returns the error's code.
func (e *Error) Code() protocol.Code { return e.Detail.Code }

// CodeOf returns the broker's code of err, or "" if it is not a refusal.
func CodeOf(err error) protocol.Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Detail.Code
	}
	return ""
}

// Grant is a session with its seat.
type Grant struct {
	Session protocol.Session
	Fence   string
	Lease   time.Duration
}

// known is a session the client holds.
type known struct {
	fence  string
	state  string
	notice time.Time // deadline of the last notice passed on
}

// Client is one connection to a broker, kept alive across reconnects.
// Its methods are safe for concurrent use.
type Client struct {
	urls   []string // Dial's address, then Options.Addresses
	opts   Options
	events *queue
	cancel context.CancelFunc // ends the run loop's context
	done   chan struct{}      // closed by Close
	once   sync.Once
	wg     sync.WaitGroup

	mu        sync.Mutex
	link      *link                                  // the live connection, nil while away; guarded by mu
	at        int                                    // the index in urls of the node to connect to; guarded by mu
	up        chan struct{}                          // closed when a link is live; guarded by mu
	stopped   chan struct{}                          // closed when the client stops for good
	stopErr   error                                  // why it stopped; guarded by mu
	token     string                                 // guarded by mu
	user      protocol.Identity                      // guarded by mu
	heartbeat time.Duration                          // guarded by mu
	lease     time.Duration                          // guarded by mu
	sessions  map[string]*known                      // guarded by mu
	pending   map[string]chan protocol.ServerMessage // request id -> reply; guarded by mu
	nextID    uint64                                 // guarded by mu
	ackSink   chan struct{}                          // the heartbeat loop's; guarded by mu
}

// Dial connects to the broker at addr (ws://host:port/ws, or the node's
// http:// address), says hello and signs in. ctx bounds the first
// connection only; the client then lives until Close.
func Dial(ctx context.Context, addr string, opts Options) (*Client, error) {
	if opts.Role == "" {
		opts.Role = RoleDesktop
	}
	if opts.Role != RoleDesktop && opts.Role != RoleRemote {
		return nil, errors.New("client: role must be desktop or remote")
	}
	if opts.Role == RoleDesktop && opts.DeviceID == "" {
		return nil, errors.New("client: a desktop client needs a DeviceID")
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = 100 * time.Millisecond
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 5 * time.Second
	}
	if opts.Dialer == nil {
		opts.Dialer = websocket.DefaultDialer
	}
	var urls []string
	for _, a := range append([]string{addr}, opts.Addresses...) {
		u, err := wsURL(a)
		if err != nil {
			return nil, err
		}
		urls = append(urls, u)
	}
	c := &Client{
		urls: urls, opts: opts, done: make(chan struct{}), up: make(chan struct{}), stopped: make(chan struct{}),
		token: opts.Token, sessions: map[string]*known{}, pending: map[string]chan protocol.ServerMessage{},
	}
	c.events = newQueue()
	for _, r := range opts.Sessions {
		c.sessions[r.ID] = &known{fence: r.Fence}
	}
	l, err := c.connect(ctx)
	for tries := 1; err != nil && tries < len(urls) && !fatal(err) && ctx.Err() == nil; tries++ {
		// that node is down: the next one
		c.moveOn()
		l, err = c.connect(ctx)
	}
	if err != nil {
		c.events.close()
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c.cancel = cancel
	c.wg.Add(1)
	go c.run(runCtx, l)
	return c, nil
}

// wsURL turns a node's address into its websocket URL.
func wsURL(addr string) (string, error) {
	u, err := url.Parse(addr)
	if err != nil {
		return "", fmt.Errorf("client: the address %q must be ws://, wss://, http:// or https://host[:port][/path]: %w", addr, err)
	}
	switch u.Scheme {
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	case "ws", "wss":
	default:
		return "", errors.New("client: the address must be ws://, wss://, http:// or https://")
	}
	if u.Host == "" {
		return "", fmt.Errorf("client: the address %q names no host", addr)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = protocol.WSPath
	}
	return u.String(), nil
}

// Events delivers what the broker says, in order. Read it until it is
// closed: when the client stops for good, after its Stopped event (and
// all before it) was read; or by Close, after which only what fits in a
// small buffer is still delivered and the rest is dropped. It never
// blocks the client, whose backlog grows while nobody reads.
func (c *Client) Events() <-chan Event { return c.events.out }

// Token returns the client's bearer token (issued at sign-in when the
// client signed in with a password).
func (c *Client) Token() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.token
}

// User returns who the desktop client is signed in as.
func (c *Client) User() protocol.Identity {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.user
}

// Sessions returns the sessions the client holds, with their fencing
// tokens: what it sends back when it reconnects.
func (c *Client) Sessions() []protocol.SessionRef {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.refsLocked()
}

func (c *Client) refsLocked() []protocol.SessionRef {
	out := make([]protocol.SessionRef, 0, len(c.sessions))
	for id, k := range c.sessions {
		out = append(out, protocol.SessionRef{ID: id, Fence: k.fence})
	}
	return out
}

// Close disconnects. It does not end the client's sessions: close them
// first (CloseSession), or their seats are freed when their lease runs
// out. It is idempotent.
func (c *Client) Close() error {
	c.once.Do(func() {
		close(c.done)
		c.cancel()
		c.mu.Lock()
		l := c.link
		c.mu.Unlock()
		if l != nil {
			l.shut(websocket.CloseNormalClosure, "client closing")
		}
	})
	c.wg.Wait()
	c.events.close()
	return nil
}

// OpenOption changes what Open asks for.
type OpenOption func(*protocol.ClientMessage)

// WithCode asks for a session code: the session waits in standby, holding
// its seat, until the remote side joins with the code.
func WithCode() OpenOption { return func(m *protocol.ClientMessage) { m.WithCode = true } }

// Open opens a session (desktop). A refusal by the seat rules is an
// *Error with Denied set.
//
// A ctx that has ended before the request is sent fails it and sends
// nothing. One that ends while the reply is on its way makes Open return
// ctx's error, but the broker may grant the session all the same: the
// client then holds it like any other (Sessions, heartbeats, reconnects),
// and a Granted event tells it; close it (CloseSession) if it is not
// wanted. The same goes for Resume and Join. A refusal that comes after
// (an error reply) changed nothing and is dropped; a denial is still told
// by a Denied event, like every denial.
func (c *Client) Open(ctx context.Context, opts ...OpenOption) (Grant, error) {
	m := protocol.ClientMessage{Type: protocol.TypeOpen}
	for _, o := range opts {
		o(&m)
	}
	r, err := c.request(ctx, m)
	if err != nil {
		return Grant{}, err
	}
	return grantOf(r), nil
}

func grantOf(r protocol.ServerMessage) Grant {
	g := Grant{Fence: r.Fence, Lease: time.Duration(r.LeaseMS) * time.Millisecond}
	if r.Session != nil {
		g.Session = *r.Session
	}
	return g
}

// Join joins a session by its code (remote).
func (c *Client) Join(ctx context.Context, code string) (protocol.Session, error) {
	r, err := c.request(ctx, protocol.ClientMessage{Type: protocol.TypeJoin, Code: strings.TrimSpace(code)})
	if err != nil {
		return protocol.Session{}, err
	}
	return *r.Session, nil
}

// Pause pauses one of the client's active sessions, freeing its seat. The
// node pauses it with the fencing token this connection holds it by: if
// another connection has taken the session over since (and resumed it, a
// new token), the answer is an *Error with code forbidden and nothing
// changes; the next heartbeat then reports the session lost.
func (c *Client) Pause(ctx context.Context, sid string) (protocol.Session, error) {
	r, err := c.request(ctx, protocol.ClientMessage{Type: protocol.TypePause, SessionID: sid})
	if err != nil {
		return protocol.Session{}, err
	}
	return *r.Session, nil
}

// Resume resumes a paused session, taking a seat by the seat rules.
func (c *Client) Resume(ctx context.Context, sid string) (Grant, error) {
	r, err := c.request(ctx, protocol.ClientMessage{Type: protocol.TypeResume, SessionID: sid})
	if err != nil {
		return Grant{}, err
	}
	return grantOf(r), nil
}

// CloseSession ends a session at once, as a participant (either side). A
// desktop client closes with the fencing token its connection holds the
// session by, and is refused (code forbidden) like Pause when that token
// is stale; a remote side holds no token.
func (c *Client) CloseSession(ctx context.Context, sid string) (protocol.Session, error) {
	r, err := c.request(ctx, protocol.ClientMessage{Type: protocol.TypeClose, SessionID: sid})
	if err != nil {
		return protocol.Session{}, err
	}
	if r.Session == nil {
		return protocol.Session{ID: sid, State: protocol.StateEnded, Reason: r.Reason}, nil
	}
	return *r.Session, nil
}

// request sends m on the live connection (waiting for one) and waits for
// its reply.
func (c *Client) request(ctx context.Context, m protocol.ClientMessage) (protocol.ServerMessage, error) {
	l, err := c.live(ctx)
	if err != nil {
		return protocol.ServerMessage{}, err
	}
	if err := ctx.Err(); err != nil {
		return protocol.ServerMessage{}, err // not sent: nothing happens
	}
	ch := make(chan protocol.ServerMessage, 1)
	c.mu.Lock()
	c.nextID++
	m.ID = "r" + strconv.FormatUint(c.nextID, 10)
	c.pending[m.ID] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, m.ID)
		c.mu.Unlock()
	}()
	if err := l.send(m); err != nil {
		return protocol.ServerMessage{}, ErrDisconnected
	}
	var r protocol.ServerMessage
	select {
	case r = <-ch:
	case <-l.lost:
		// the reply may have come just before the connection closed
		select {
		case r = <-ch:
		default:
			return protocol.ServerMessage{}, ErrDisconnected
		}
	case <-ctx.Done():
		return protocol.ServerMessage{}, ctx.Err()
	case <-c.done:
		return protocol.ServerMessage{}, ErrClosed
	}
	switch r.Type {
	case protocol.TypeError:
		return r, &Error{Detail: detailOf(r)}
	case protocol.TypeDenied:
		return r, &Error{Detail: detailOf(r), Denied: true}
	}
	if r.Session == nil && r.Type != protocol.TypeEnded {
		return r, &Error{Detail: protocol.ErrorDetail{Code: protocol.CodeInternal, Message: "the reply carries no session"}}
	}
	return r, nil
}

// live returns the live connection, waiting while the client reconnects.
func (c *Client) live(ctx context.Context) (*link, error) {
	for {
		select {
		case <-c.done:
			// checked first: a client closed after it stopped says so
			return nil, ErrClosed
		default:
		}
		c.mu.Lock()
		l, up := c.link, c.up
		c.mu.Unlock()
		if l != nil {
			return l, nil
		}
		select {
		case <-up:
		case <-c.stopped:
			c.mu.Lock()
			stopErr := c.stopErr
			c.mu.Unlock()
			if stopErr == nil {
				stopErr = ErrClosed
			}
			return nil, stopErr
		case <-c.done:
			return nil, ErrClosed
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}
