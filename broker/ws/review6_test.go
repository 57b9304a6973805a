package ws_test

// Security review 6: tests that demonstrate weaknesses of the websocket
// layer. Each one fails while the weakness is there.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"

	"github.com/seatbroker/seatbroker/broker/protocol"
	"github.com/seatbroker/seatbroker/broker/ws"
	"github.com/seatbroker/seatbroker/internal/testredis"
)

// rawRemote dials url and says hello as a remote side.
func rawRemote(t *testing.T, url string) *websocket.Conn {
	t.Helper()
	c, resp, err := websocket.DefaultDialer.Dial(url, http.Header{})
	require.NoError(t, err)
	_ = resp.Body.Close()
	t.Cleanup(func() { _ = c.Close() })
	require.NoError(t, c.WriteJSON(protocol.ClientMessage{Type: protocol.TypeHello, ID: "h",
		Version: protocol.Version, Role: protocol.RoleRemote}))
	var m protocol.ServerMessage
	require.NoError(t, c.ReadJSON(&m))
	require.Equal(t, protocol.TypeWelcome, m.Type, "%+v", m)
	return c
}

// TestReview6ConcurrentWrongCodesExceedTheJoinLimit: docs/design.md
// ("Codes") promises that one source address may try at most JoinRate (10)
// wrong codes a minute. Join peeks at the limit, runs the join, and only
// then takes from the limit (broker/sessions.go, Join), so wrong codes sent
// at the same moment over many connections from one address all pass the
// peek: one address gets far more guesses than the limit allows.
func TestReview6ConcurrentWrongCodesExceedTheJoinLimit(t *testing.T) {
	t.Parallel()
	rc := redisClient(t)
	cfg := fastConfig(testredis.Prefix(t))
	n := startNode(t, rc, cfg, ws.Options{})

	const conns = 60
	cs := make([]*websocket.Conn, conns)
	for i := range cs {
		cs[i] = rawRemote(t, n.url)
	}
	var mu sync.Mutex
	codes := map[protocol.Code]int{}
	burst := func(round int) {
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i, c := range cs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				code := fmt.Sprintf("%09d", 100000000+round*1000003+i*7919) // a wrong code (no session has one)
				_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
				if err := c.WriteJSON(protocol.ClientMessage{Type: protocol.TypeJoin, ID: "j", Code: code}); err != nil {
					return
				}
				_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
				var m protocol.ServerMessage
				if err := c.ReadJSON(&m); err != nil || m.Error == nil {
					return
				}
				mu.Lock()
				codes[m.Error.Code]++
				mu.Unlock()
			}()
		}
		close(start)
		wg.Wait()
	}
	// a burst now, and another one as soon as the limiter has one slot
	// free again (60 s / JoinRate later)
	began := time.Now()
	burst(0)
	time.Sleep(time.Minute/time.Duration(cfg.JoinRate) + 200*time.Millisecond)
	burst(1)
	t.Logf("answers to 2 x %d wrong codes sent at once from one address within %v: %v",
		conns, time.Since(began).Round(time.Millisecond), codes)
	require.LessOrEqual(t, codes[protocol.CodeNotFound], cfg.JoinRate+1,
		"one address tried %d wrong codes in %v; the limit is %d a minute",
		codes[protocol.CodeNotFound], time.Since(began).Round(time.Second), cfg.JoinRate)
}

// TestReview6WebsocketKeepsWorkingAfterItsTokenExpired: a desktop
// connection that said hello with a client token keeps opening sessions
// (taking seats) after the token expired: the token is only checked at
// hello (and on a revocation or resync), never against its expiry. A
// token with a minute to live thus gives a connection that lives forever.
// It takes a little over a minute (the shortest token lives a minute).
func TestReview6WebsocketKeepsWorkingAfterItsTokenExpired(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for a token to expire (61 s)")
	}
	t.Parallel()
	rc := redisClient(t)
	cfg := fastConfig(testredis.Prefix(t))
	cfg.Heartbeat = 2 * time.Second
	cfg.Lease = 10 * time.Second
	n := startNode(t, rc, cfg, ws.Options{})
	acct := newAccount(t, n.b, 5)
	ctx := context.Background()
	tok, err := n.b.IssueToken(ctx, acct.ann, time.Minute, "short")
	require.NoError(t, err)

	c, resp, err := websocket.DefaultDialer.Dial(n.url, http.Header{})
	require.NoError(t, err)
	_ = resp.Body.Close()
	t.Cleanup(func() { _ = c.Close() })
	send := func(m protocol.ClientMessage) protocol.ServerMessage {
		t.Helper()
		require.NoError(t, c.WriteJSON(m))
		for {
			var r protocol.ServerMessage
			require.NoError(t, c.ReadJSON(&r))
			if r.ID == m.ID {
				return r
			}
		}
	}
	w := send(protocol.ClientMessage{Type: protocol.TypeHello, ID: "h", Version: protocol.Version,
		Role: protocol.RoleDesktop, DeviceID: "dev1", Token: tok.Token})
	require.Equal(t, protocol.TypeWelcome, w.Type, "%+v", w)

	// keep the connection alive past the token's expiry
	deadline := tok.Expires.Add(time.Second)
	for i := 0; n.b.Now().Before(deadline); i++ {
		ack := send(protocol.ClientMessage{Type: protocol.TypeHeartbeat, ID: fmt.Sprint("hb", i)})
		require.Equal(t, protocol.TypeAck, ack.Type)
		time.Sleep(time.Second)
	}
	_, err = n.b.Authenticate(ctx, tok.Token, "client")
	require.Error(t, err, "the token has expired")

	g := send(protocol.ClientMessage{Type: protocol.TypeOpen, ID: "o"})
	require.NotEqual(t, protocol.TypeGranted, g.Type,
		"a connection whose token expired at %v was still granted a seat at %v", tok.Expires, n.b.Now())
}

// TestReview6ConnectionThatNeverSaysHelloIsKeptForever: a websocket that
// never says hello (so is nobody: no token, no code) is kept open for as
// long as it answers the server's pings: there is no deadline for the
// hello (broker/ws/conn.go, readPump: only pongWait, which every pong
// renews) and no cap on connections per address, so unauthenticated
// clients can hold a node's goroutines, buffers and sockets for ever.
// It waits 70 s (past pongWait and the first ping).
func TestReview6ConnectionThatNeverSaysHelloIsKeptForever(t *testing.T) {
	if testing.Short() {
		t.Skip("waits 70 s")
	}
	t.Parallel()
	rc := redisClient(t)
	n := startNode(t, rc, fastConfig(testredis.Prefix(t)), ws.Options{})
	c, resp, err := websocket.DefaultDialer.Dial(n.url, http.Header{})
	require.NoError(t, err)
	_ = resp.Body.Close()
	defer c.Close()
	// read (which answers pings) and say nothing for 70 s
	_ = c.SetReadDeadline(time.Now().Add(70 * time.Second))
	_, _, err = c.ReadMessage()
	var ne interface{ Timeout() bool }
	closed := !(errors.As(err, &ne) && ne.Timeout())
	t.Logf("after 70 s without a hello: read error %v; node connections %d", err, n.ws.Conns())
	require.True(t, closed, "a connection that never said hello is still open after 70 s (%d on the node)", n.ws.Conns())
}
