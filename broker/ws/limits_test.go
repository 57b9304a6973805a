package ws_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"

	"github.com/seatbroker/seatbroker/broker/protocol"
	"github.com/seatbroker/seatbroker/broker/ws"
	"github.com/seatbroker/seatbroker/client"
	"github.com/seatbroker/seatbroker/internal/clientaddr"
	"github.com/seatbroker/seatbroker/internal/testredis"
)

// A user (or a stolen token) cannot open desktop connections without end:
// each holds goroutines and buffers of the node.
func TestAUserHoldsAtMostMaxUserConnsDesktopConnectionsOnANode(t *testing.T) {
	t.Parallel()
	n := startNode(t, redisClient(t), fastConfig(testredis.Prefix(t)), ws.Options{MaxUserConns: 3})
	acct := newAccount(t, n.b, 5)
	var conns []*raw
	for range 3 {
		r := rawDial(t, n.url, acct.annTok)
		r.hello(t, protocol.ClientMessage{Role: protocol.RoleDesktop, DeviceID: "d1"})
		conns = append(conns, r)
	}
	extra := rawDial(t, n.url, acct.annTok)
	extra.send(t, protocol.ClientMessage{Type: protocol.TypeHello, ID: "h", Version: protocol.Version,
		Role: protocol.RoleDesktop, DeviceID: "d1"})
	requireError(t, extra.next(t), "h", protocol.CodeRateLimited, "")

	// another user is not held to ann's count
	other := rawDial(t, n.url, acct.ownerTok)
	other.hello(t, protocol.ClientMessage{Role: protocol.RoleDesktop, DeviceID: "d1"})

	// a connection that ends makes room
	require.NoError(t, conns[0].c.Close())
	require.Eventually(t, func() bool {
		r := rawDial(t, n.url, acct.annTok)
		r.send(t, protocol.ClientMessage{Type: protocol.TypeHello, ID: "h", Version: protocol.Version,
			Role: protocol.RoleDesktop, DeviceID: "d1"})
		return r.next(t).Type == protocol.TypeWelcome
	}, 5*time.Second, 20*time.Millisecond)
}

// An address cannot hold the node's sockets and goroutines with
// connections that belong to no account: a remote hello needs no
// credentials, so each could stay for its hello and join waits. Those
// that have said hello as a user, joined a session, or came with a bearer
// token do not count; one that ends or arrives gives its place back.
func TestAnAddressHoldsAtMostMaxWaitingConnectionsOfNoAccount(t *testing.T) {
	t.Parallel()
	n := startNode(t, redisClient(t), fastConfig(testredis.Prefix(t)), ws.Options{MaxWaitingPerAddress: 3})
	acct := newAccount(t, n.b, 5)
	d := dial(t, n.url, desktop(acct.annTok, "dev1"))
	g, err := d.Open(context.Background(), client.WithCode())
	require.NoError(t, err)
	refused := func() {
		t.Helper()
		c, resp, err := websocket.DefaultDialer.Dial(n.url, nil)
		if c != nil {
			_ = c.Close()
		}
		require.ErrorIs(t, err, websocket.ErrBadHandshake)
		defer func() { _ = resp.Body.Close() }()
		require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
		var body protocol.ErrorBody
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
		require.Equal(t, protocol.CodeRateLimited, body.Error.Code)
	}

	waiting := []*raw{rawDial(t, n.url, ""), rawDial(t, n.url, ""), rawDial(t, n.url, "")}
	require.Equal(t, 3, n.ws.Waiting("127.0.0.1"))
	refused()
	// said hello as remote, but joined nothing yet: still waiting
	waiting[0].hello(t, protocol.ClientMessage{Role: protocol.RoleRemote})
	refused()

	// a client with a bearer token is somebody from the start
	ok := rawDial(t, n.url, acct.ownerTok)
	ok.hello(t, protocol.ClientMessage{Role: protocol.RoleDesktop, DeviceID: "d9"})

	// joining a session gives the place back
	waiting[0].send(t, protocol.ClientMessage{Type: protocol.TypeJoin, ID: "j", Code: g.Session.Code})
	require.Equal(t, protocol.TypeJoined, waiting[0].next(t).Type)
	require.Equal(t, 2, n.ws.Waiting("127.0.0.1"))
	// so does a desktop hello with the token in the hello
	waiting[1].hello(t, protocol.ClientMessage{Role: protocol.RoleDesktop, DeviceID: "d2", Token: acct.ownerTok})
	require.Equal(t, 1, n.ws.Waiting("127.0.0.1"))
	waiting = append(waiting, rawDial(t, n.url, ""), rawDial(t, n.url, ""))
	refused()

	// and so does a connection that ends
	require.NoError(t, waiting[2].c.Close())
	require.Eventually(t, func() bool { return n.ws.Waiting("127.0.0.1") == 2 }, 5*time.Second, 10*time.Millisecond)
	rawDial(t, n.url, "")
	refused()
}

// Behind a proxy the node trusts (ws.Options.ClientAddr with
// clientaddr.Resolver.Of: -trusted-proxies), the limits per address are
// kept per client address the proxy gives, not for the proxy as a whole:
// one client's wrong codes or waiting connections do not hold the others
// back. From a peer it does not trust, the header is ignored.
func TestLimitsPerAddressFollowATrustedProxy(t *testing.T) {
	t.Parallel()
	loopback, err := clientaddr.Parse("127.0.0.1, ::1")
	require.NoError(t, err)
	for _, c := range []struct {
		name    string
		trusted clientaddr.Resolver
		another bool // whether another client of the proxy is held back too
	}{
		{"trusted", loopback, false},
		{"not trusted", clientaddr.Resolver{}, true},
	} {
		cfg := fastConfig(testredis.Prefix(t))
		n := startNode(t, redisClient(t), cfg, ws.Options{MaxWaitingPerAddress: 2, ClientAddr: c.trusted.Of})
		dial := dialVia(t, n.url)
		held := func(code int) bool { return code == http.StatusTooManyRequests }

		// waiting connections
		a1, _ := dial("198.51.100.1")
		a2, _ := dial("198.51.100.1")
		_, code := dial("198.51.100.1")
		require.True(t, held(code), "%s: a third waiting connection of one client", c.name)
		_, code = dial("198.51.100.2")
		require.Equal(t, c.another, held(code), "%s: another client's first", c.name)
		if !c.another {
			require.Equal(t, 2, n.ws.Waiting("198.51.100.1"), c.name)
		}

		// wrong codes: a1 uses the client's all up
		a1.hello(t, protocol.ClientMessage{Role: protocol.RoleRemote})
		for i := range cfg.JoinRate {
			a1.send(t, protocol.ClientMessage{Type: protocol.TypeJoin, ID: "j", Code: fmt.Sprintf("%09d", 100000000+i)})
			requireError(t, a1.next(t), "j", protocol.CodeNotFound, "")
		}
		a1.send(t, protocol.ClientMessage{Type: protocol.TypeJoin, ID: "j", Code: "100000099"})
		requireError(t, a1.next(t), "j", protocol.CodeRateLimited, "")
		require.NoError(t, a2.c.Close()) // (a place for the other client, untrusted)
		require.Eventually(t, func() bool {
			b, code := dial("198.51.100.2")
			if b == nil {
				return false
			}
			b.hello(t, protocol.ClientMessage{Role: protocol.RoleRemote})
			b.send(t, protocol.ClientMessage{Type: protocol.TypeJoin, ID: "j", Code: "100000098"})
			m := b.next(t)
			require.Equal(t, http.StatusSwitchingProtocols, code)
			require.NotNil(t, m.Error)
			want := protocol.CodeNotFound
			if c.another {
				want = protocol.CodeRateLimited
			}
			require.Equal(t, want, m.Error.Code, "%s: another client's first wrong code", c.name)
			return true
		}, 5*time.Second, 20*time.Millisecond)
	}
}

// An IPv6 client holds a whole /64 and can take a new address for each
// connection, so the limits per address count a /64 as one address: two
// addresses of one /64 share the waiting places and the wrong codes;
// another /64 is another client. (Through a trusted proxy, which is how
// a test on loopback can come from many IPv6 addresses.)
func TestTheLimitsPerAddressCountAnIPv6Slash64AsOneAddress(t *testing.T) {
	t.Parallel()
	loopback, err := clientaddr.Parse("127.0.0.1, ::1")
	require.NoError(t, err)
	cfg := fastConfig(testredis.Prefix(t))
	n := startNode(t, redisClient(t), cfg, ws.Options{MaxWaitingPerAddress: 2, ClientAddr: loopback.Of})
	dial := dialVia(t, n.url)

	// waiting connections: two of one /64 fill its places
	a1, _ := dial("2001:db8:1:2::1")
	a2, _ := dial("2001:db8:1:2::2")
	require.Equal(t, 2, n.ws.Waiting("2001:db8:1:2::1"))
	_, code := dial("2001:db8:1:2:ffff::3")
	require.Equal(t, http.StatusTooManyRequests, code, "a third address of the /64")
	b, code := dial("2001:db8:1:3::1")
	require.Equal(t, http.StatusSwitchingProtocols, code, "an address of the next /64")

	// wrong codes: one address of the /64 uses them all up for the other
	a1.hello(t, protocol.ClientMessage{Role: protocol.RoleRemote})
	for i := range cfg.JoinRate {
		a1.send(t, protocol.ClientMessage{Type: protocol.TypeJoin, ID: "j", Code: fmt.Sprintf("%09d", 100000000+i)})
		requireError(t, a1.next(t), "j", protocol.CodeNotFound, "")
	}
	a2.hello(t, protocol.ClientMessage{Role: protocol.RoleRemote})
	a2.send(t, protocol.ClientMessage{Type: protocol.TypeJoin, ID: "j", Code: "100000099"})
	requireError(t, a2.next(t), "j", protocol.CodeRateLimited, "")
	b.hello(t, protocol.ClientMessage{Role: protocol.RoleRemote})
	// another /64's first wrong code is only wrong
	b.send(t, protocol.ClientMessage{Type: protocol.TypeJoin, ID: "j", Code: "100000098"})
	requireError(t, b.next(t), "j", protocol.CodeNotFound, "")
}

// dialVia returns a dial to url through a proxy that says the client is
// from: the connection, or nil and the refusal's HTTP status.
func dialVia(t *testing.T, url string) func(from string) (*raw, int) {
	return func(from string) (*raw, int) {
		t.Helper()
		conn, resp, err := websocket.DefaultDialer.Dial(url, http.Header{"X-Forwarded-For": {from}})
		if err != nil {
			require.ErrorIs(t, err, websocket.ErrBadHandshake)
			_ = resp.Body.Close()
			return nil, resp.StatusCode
		}
		_ = resp.Body.Close()
		t.Cleanup(func() { _ = conn.Close() })
		return &raw{c: conn}, http.StatusSwitchingProtocols
	}
}
