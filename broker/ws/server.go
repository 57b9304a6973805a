// Package ws is the websocket side of a broker node: desktop clients (a
// signed-in user on a device) and remote clients (a customer who joined
// by a session code) talk to the broker over one connection each, in the
// protocol of docs/protocol.md (types in broker/protocol).
//
// Every connection has exactly one reader goroutine (it also runs the
// requests, one at a time) and one writer goroutine (the only one that
// writes to the socket), as in gorilla/websocket's chat example. The
// server keeps a per-node index of which connections take part in which
// session, and one broker.Watch per account with connections here, so an
// event from any node (a notice, an end) reaches every participant.
package ws

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/gorilla/websocket"

	"github.com/seatbroker/seatbroker/broker"
	"github.com/seatbroker/seatbroker/broker/protocol"
	"github.com/seatbroker/seatbroker/internal/clientaddr"
)

// Connection timing and limits.
const (
	// writeWait bounds every write; a client that cannot take a frame in
	// that time is gone.
	writeWait = 10 * time.Second
	// pongWait is how long the reader waits for any frame (a pong answers
	// each ping) before it gives the connection up.
	pongWait = 60 * time.Second
	// pingPeriod must be shorter than pongWait.
	pingPeriod = pongWait * 9 / 10
	// maxMessageSize is the read limit; a bigger frame closes the
	// connection with 1009. Compression is off, so it counts real bytes.
	maxMessageSize = protocol.MaxFrame
	// defaultSendQueue is how many messages may wait for a slow client
	// before it is disconnected.
	defaultSendQueue = 32
	// defaultHelloWait is how long a connection may stay without a
	// successful hello: until then it is nobody, and must not hold the
	// node's sockets and goroutines for as long as it answers pings.
	defaultHelloWait = 10 * time.Second
	// defaultJoinWait is how long a remote connection may stay after its
	// hello without a session: time for a person to type the code, not
	// for an anonymous socket to be kept.
	defaultJoinWait = 2 * time.Minute
	// requestTimeout bounds the broker calls of one request.
	requestTimeout = 10 * time.Second
	// maxConnSessions is how many sessions one connection may hold.
	maxConnSessions = protocol.MaxHelloSessions
	// defaultMaxUserConns bounds one user's desktop connections on a node
	// (Options.MaxUserConns).
	defaultMaxUserConns = 256
	// defaultMaxWaiting bounds one address's connections that belong to
	// no account yet (Options.MaxWaitingPerAddress).
	defaultMaxWaiting = 64
)

// Options configure a Server.
type Options struct {
	// Log receives connection errors (nil: none).
	Log *slog.Logger
	// AllowedOrigins are the origins (scheme://host:port) besides the
	// node's own that browsers may open the websocket from (default none).
	// Requests without an Origin header (programs) are always allowed.
	AllowedOrigins []string
	// SendQueue is how many messages may wait for one client before it is
	// disconnected as too slow (default 32).
	SendQueue int
	// HelloWait is how long a new connection may take to say hello (a
	// successful one) before it is closed with 1008 (default 10s).
	HelloWait time.Duration
	// JoinWait is how long a remote connection may stay after its hello
	// without joining (or rejoining) a session before it is closed with
	// 1008 (default 2m).
	JoinWait time.Duration
	// MaxUserConns is how many desktop connections one user may have on
	// this node (default 256): a hello past it is refused (rate_limited).
	MaxUserConns int
	// MaxWaitingPerAddress is how many connections from one address (for
	// IPv6, one /64) this node keeps that belong to no account yet:
	// upgraded without a bearer token, and not yet through a desktop hello
	// or a remote join or rejoin (default 64). Past it an upgrade is
	// refused with 429 rate_limited. A remote hello needs no credentials, so without it one
	// address could hold the node's sockets and goroutines by the
	// thousand, each for its hello and join waits.
	MaxWaitingPerAddress int
	// ClientAddr gives the client's address of an upgrade, for the limits
	// kept per address (default: the TCP peer's; clientaddr.Resolver.Of
	// reads a trusted proxy's X-Forwarded-For).
	ClientAddr func(*http.Request) string
}

// Server is the websocket hub of one node.
type Server struct {
	b        *broker.Broker
	log      *slog.Logger
	opts     Options
	upgrader websocket.Upgrader
	done     chan struct{} // closed by Close
	once     sync.Once
	wg       sync.WaitGroup // readers, writers, watch loops, refreshes

	mu       sync.Mutex
	closed   bool                          // guarded by mu
	conns    map[*conn]struct{}            // guarded by mu
	accounts map[string]*accountWatch      // guarded by mu
	sessions map[string]map[*conn]struct{} // session id -> participants here; guarded by mu
	waiting  map[string]int                // clientaddr.LimitKey of an address -> its connections of no account yet; guarded by mu
}

// accountWatch is the node's subscription to one account's events while
// connections of that account are here.
type accountWatch struct {
	conns    map[*conn]struct{} // guarded by Server.mu
	users    map[string]int     // desktop connections per user (Options.MaxUserConns); guarded by Server.mu
	cancel   func()
	canceled bool // guarded by Server.mu: we ended it, the broker did not
}

// add indexes c in the watch. The caller holds Server.mu.
func (w *accountWatch) add(c *conn) {
	w.conns[c] = struct{}{}
	if c.tokenUser != "" {
		w.users[c.tokenUser]++
	}
}

// remove takes c out of the watch, if it is in it. The caller holds
// Server.mu.
func (w *accountWatch) remove(c *conn) {
	if _, in := w.conns[c]; !in {
		return
	}
	delete(w.conns, c)
	if u := c.tokenUser; u != "" {
		if w.users[u] <= 1 {
			delete(w.users, u)
		} else {
			w.users[u]--
		}
	}
}

// New returns a server for b.
func New(b *broker.Broker, opts Options) *Server {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.SendQueue <= 0 {
		opts.SendQueue = defaultSendQueue
	}
	if opts.JoinWait <= 0 {
		opts.JoinWait = defaultJoinWait
	}
	if opts.HelloWait <= 0 {
		opts.HelloWait = defaultHelloWait
	}
	if opts.MaxUserConns <= 0 {
		opts.MaxUserConns = defaultMaxUserConns
	}
	if opts.ClientAddr == nil {
		opts.ClientAddr = sourceOf
	}
	if opts.MaxWaitingPerAddress <= 0 {
		opts.MaxWaitingPerAddress = defaultMaxWaiting
	}
	s := &Server{
		b: b, log: opts.Log, opts: opts, done: make(chan struct{}),
		conns: map[*conn]struct{}{}, accounts: map[string]*accountWatch{}, sessions: map[string]map[*conn]struct{}{},
		waiting: map[string]int{},
	}
	s.upgrader = websocket.Upgrader{
		HandshakeTimeout:  writeWait,
		ReadBufferSize:    1024,
		WriteBufferSize:   1024,
		WriteBufferPool:   &sync.Pool{}, // idle connections hold no write buffer
		CheckOrigin:       s.checkOrigin,
		EnableCompression: false, // the read limit must count real bytes
		Error: func(w http.ResponseWriter, _ *http.Request, status int, reason error) {
			code := protocol.CodeInvalidRequest
			if status == http.StatusForbidden {
				code = protocol.CodeForbidden
			}
			writeHTTPError(w, status, protocol.ErrorDetail{Code: code, Message: reason.Error()})
		},
	}
	return s
}

// Register mounts GET /ws on r and returns the server. Its connections
// close when b closes (the broker's events end) or when Close is called.
func Register(r gin.IRoutes, b *broker.Broker, opts Options) *Server {
	s := New(b, opts)
	r.GET(protocol.WSPath, func(c *gin.Context) { s.ServeHTTP(c.Writer, c.Request) })
	return s
}

// Run serves until ctx is done, then closes the server.
func (s *Server) Run(ctx context.Context) {
	select {
	case <-ctx.Done():
	case <-s.done:
	}
	s.Close()
}

// Close stops the server. Shutdown order: refuse new upgrades; let every
// connection finish the request it is running and answer it (so a grant
// made is heard of), read no more, and close with 1001 (going away) after
// what is queued for it, which ends its writer and then its reader; end
// the account watches; wait for every goroutine. Sessions are not touched: clients reconnect to another node
// within their lease. It is idempotent.
func (s *Server) Close() {
	s.once.Do(func() {
		s.mu.Lock()
		s.closed = true
		close(s.done)
		conns := make([]*conn, 0, len(s.conns))
		for c := range s.conns {
			conns = append(conns, c)
		}
		var cancels []func()
		for _, w := range s.accounts {
			w.canceled = true
			cancels = append(cancels, w.cancel)
		}
		s.mu.Unlock()
		for _, c := range conns {
			c.drain() // the request in flight is answered, then 1001
		}
		// a reader that missed drain's wake-up (a pong moved its read
		// deadline on) is stopped once the longest request would be over
		time.AfterFunc(requestTimeout+time.Second, func() {
			for _, c := range conns {
				c.stop(websocket.CloseGoingAway, "server shutting down")
			}
		})
		for _, cancel := range cancels {
			cancel()
		}
	})
	s.wg.Wait()
}

// Conns returns how many connections the node has (tests and metrics).
func (s *Server) Conns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// ServeHTTP upgrades a request to a websocket connection. A desktop client
// may authenticate here with "Authorization: Bearer <token>": a bad token
// is refused with 401 before the upgrade.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var pre *broker.Principal
	preToken := ""
	var preExpires time.Time
	if h := r.Header.Get("Authorization"); h != "" {
		tok, ok := strings.CutPrefix(h, "Bearer ")
		if !ok {
			writeHTTPError(w, http.StatusUnauthorized, protocol.ErrorDetail{Code: protocol.CodeUnauthorized, Message: "use Authorization: Bearer <token>"})
			return
		}
		p, exp, err := s.b.AuthenticateUntil(r.Context(), strings.TrimSpace(tok), broker.TokenClient)
		if err != nil {
			d, status := broker.ErrorDetail(err)
			writeHTTPError(w, status, d)
			return
		}
		pre, preToken, preExpires = &p, strings.TrimSpace(tok), exp
	}
	src := s.opts.ClientAddr(r)
	// an IPv6 client's addresses of one /64 share their places: it could
	// take a new address for each connection
	key := clientaddr.LimitKey(src)
	s.mu.Lock()
	closed := s.closed
	full := pre == nil && s.waiting[key] >= s.opts.MaxWaitingPerAddress
	if !closed && !full && pre == nil {
		s.waiting[key]++ // held from here: upgrades in flight count too
	}
	s.mu.Unlock()
	if closed {
		writeHTTPError(w, http.StatusServiceUnavailable, protocol.ErrorDetail{Code: protocol.CodeUnavailable, Message: "the node is shutting down"})
		return
	}
	if full {
		writeHTTPError(w, http.StatusTooManyRequests, protocol.ErrorDetail{Code: protocol.CodeRateLimited,
			Message: fmt.Sprintf("this address has %d connections here that have not said hello or joined a session; finish one first", s.opts.MaxWaitingPerAddress)})
		return
	}
	wsc, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		if pre == nil {
			s.mu.Lock()
			s.release(src)
			s.mu.Unlock()
		}
		return // the upgrader answered
	}
	c := newConn(s, wsc, src, pre)
	c.preToken, c.preExpires = preToken, preExpires
	c.pageURL = broker.PageURLFor(s.b.Config().PageURL, r)
	s.mu.Lock()
	if s.closed {
		if pre == nil {
			s.release(src)
		}
		s.mu.Unlock()
		_ = wsc.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "server shutting down"), time.Now().Add(writeWait))
		_ = wsc.Close()
		return
	}
	c.waiting = pre == nil
	s.conns[c] = struct{}{}
	s.wg.Add(2)
	s.mu.Unlock()
	go c.writePump()
	// the reader gets a fresh goroutine: the request's, deep in net/http
	// and holding its buffers, ends here and frees them
	go c.readPump()
}

func (s *Server) checkOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true // not a browser
	}
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	for _, a := range s.opts.AllowedOrigins {
		if strings.EqualFold(strings.TrimSuffix(a, "/"), origin) {
			return true
		}
	}
	return false
}

// sourceOf is the TCP peer's address, the default Options.ClientAddr:
// forwarding headers are trusted only from proxies named to trust.
func sourceOf(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func writeHTTPError(w http.ResponseWriter, status int, d protocol.ErrorDetail) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(protocol.ErrorBody{Error: d})
}

// release gives back one of the waiting places (Options.
// MaxWaitingPerAddress) of src, the address as Options.ClientAddr gave it.
// The caller holds s.mu.
func (s *Server) release(src string) {
	key := clientaddr.LimitKey(src)
	if s.waiting[key] <= 1 {
		delete(s.waiting, key)
	} else {
		s.waiting[key]--
	}
}

// arrived marks c as a connection of an account: it no longer takes one
// of its address's waiting places. The caller holds s.mu.
func (s *Server) arrived(c *conn) {
	if c.waiting {
		s.release(c.source)
		c.waiting = false
	}
}

// Waiting returns how many connections from src (for IPv6, from any
// address of its /64) belong to no account yet (tests).
func (s *Server) Waiting(src string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.waiting[clientaddr.LimitKey(src)]
}

// errTooManyConns refuses a desktop hello past Options.MaxUserConns.
var errTooManyConns = fmt.Errorf("%w: this user has as many connections to this node as it may; close one first", broker.ErrRateLimited)

// watchAccount adds c to acct's watch, starting the watch if c is the
// account's first connection here.
func (s *Server) watchAccount(ctx context.Context, c *conn, acct string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return broker.ErrUnavailable
	}
	if w := s.accounts[acct]; w != nil {
		if _, in := w.conns[c]; !in {
			// a desktop connection: its user's count
			if c.tokenUser != "" && w.users[c.tokenUser] >= s.opts.MaxUserConns {
				return errTooManyConns
			}
			w.add(c)
		}
		s.arrived(c)
		return nil
	}
	ch, cancel, err := s.b.Watch(ctx, acct)
	if err != nil {
		return err
	}
	w := &accountWatch{conns: map[*conn]struct{}{}, users: map[string]int{}, cancel: cancel}
	w.add(c)
	s.accounts[acct] = w
	s.arrived(c)
	s.wg.Add(1)
	go s.watchLoop(acct, w, ch)
	return nil
}

// watchLoop delivers the account's events to its connections here until
// the watch ends. If the broker ended it (the node is stopping), the
// account's connections are told to go elsewhere.
func (s *Server) watchLoop(acct string, w *accountWatch, ch <-chan broker.Event) {
	defer s.wg.Done()
	for ev := range ch {
		s.dispatch(acct, ev)
	}
	s.mu.Lock()
	ours := w.canceled
	var conns []*conn
	if !ours {
		for c := range w.conns {
			conns = append(conns, c)
		}
		if s.accounts[acct] == w {
			delete(s.accounts, acct)
		}
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.stop(websocket.CloseGoingAway, "broker stopping")
	}
}

func (s *Server) dispatch(acct string, ev broker.Event) {
	switch ev.Type {
	case broker.EventSession:
		if ev.Session == nil {
			return
		}
		for _, c := range s.participants(ev.Session.ID) {
			c.onSession(*ev.Session)
		}
	case broker.EventWarning:
		if ev.Warning == nil {
			return
		}
		for _, c := range s.accountConns(acct) {
			c.onWarning(*ev.Warning)
		}
	case broker.EventTokens:
		// a user's tokens were revoked: its connections check theirs
		for _, c := range s.accountConns(acct) {
			if c.tokenUser == ev.UserID {
				s.goRecheck(c)
			}
		}
	case broker.EventResync:
		// events may have been lost: read every session of the account's
		// connections again, and check their tokens
		for _, c := range s.accountConns(acct) {
			s.goRefresh(c)
			if c.tokenUser != "" {
				s.goRecheck(c)
			}
		}
	}
}

// goRecheck checks c's token again in the background and closes c with
// 1008 when it no longer holds.
func (s *Server) goRecheck(c *conn) {
	s.goTracked(func() {
		_, err := s.b.Authenticate(c.ctx, c.token, broker.TokenClient)
		if errors.Is(err, broker.ErrUnauthorized) {
			c.stop(websocket.ClosePolicyViolation, "unauthorized: the token was revoked")
		}
	})
}

// goRefresh re-reads c's sessions in the background.
func (s *Server) goRefresh(c *conn) { s.goTracked(c.refresh) }

// goTracked runs fn in a goroutine that Close waits for, unless the
// server is closed.
func (s *Server) goTracked(fn func()) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		fn()
	}()
}

func (s *Server) participants(sid string) []*conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*conn, 0, len(s.sessions[sid]))
	for c := range s.sessions[sid] {
		out = append(out, c)
	}
	return out
}

func (s *Server) accountConns(acct string) []*conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.accounts[acct]
	if w == nil {
		return nil
	}
	out := make([]*conn, 0, len(w.conns))
	for c := range w.conns {
		out = append(out, c)
	}
	return out
}

func (s *Server) index(c *conn, sid string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	set := s.sessions[sid]
	if set == nil {
		set = map[*conn]struct{}{}
		s.sessions[sid] = set
	}
	set[c] = struct{}{}
}

func (s *Server) unindex(c *conn, sid string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if set := s.sessions[sid]; set != nil {
		delete(set, c)
		if len(set) == 0 {
			delete(s.sessions, sid)
		}
	}
}

// forget removes a finished connection from every index, and ends its
// account's watch if it was the last one.
func (s *Server) forget(c *conn, acct string, sids []string) {
	s.mu.Lock()
	delete(s.conns, c)
	s.arrived(c) // (a connection that never arrived gives its place back)
	for _, sid := range sids {
		if set := s.sessions[sid]; set != nil {
			delete(set, c)
			if len(set) == 0 {
				delete(s.sessions, sid)
			}
		}
	}
	var cancel func()
	if w := s.accounts[acct]; acct != "" && w != nil {
		w.remove(c)
		if len(w.conns) == 0 {
			w.canceled = true
			delete(s.accounts, acct)
			cancel = w.cancel
		}
	}
	s.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// errDetail is the wire form of a broker error; bugs are logged.
func (s *Server) errDetail(err error) protocol.ErrorDetail {
	d, _ := broker.ErrorDetail(err)
	if d.Code == protocol.CodeInternal && !errors.Is(err, context.Canceled) {
		s.log.Error("websocket request failed", "err", err)
	}
	return d
}
