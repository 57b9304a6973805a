package ws_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"

	"github.com/seatbroker/seatbroker/broker/protocol"
	"github.com/seatbroker/seatbroker/broker/ws"
	"github.com/seatbroker/seatbroker/client"
	"github.com/seatbroker/seatbroker/internal/testredis"
)

// Every way a connection of no account can go gives its waiting place
// back exactly once: refused hellos, failed joins and rejoins, hellos past
// MaxUserConns, upgrades that fail (a foreign Origin, a plain GET), and
// connections still open when the node stops. Once every connection has
// ended, the address has no waiting connection left.
func TestEveryWaitingPlaceIsGivenBackOnceWhateverTheConnectionDid(t *testing.T) {
	t.Parallel()
	n := startNode(t, redisClient(t), fastConfig(testredis.Prefix(t)), ws.Options{MaxWaitingPerAddress: 1000, MaxUserConns: 1})
	acct := newAccount(t, n.b, 5)
	d := dial(t, n.url, desktop(acct.annTok, "dev1"))
	g, err := d.Open(context.Background(), client.WithCode())
	require.NoError(t, err)
	httpURL := "http" + strings.TrimPrefix(n.url, "ws")

	tryDial := func() *websocket.Conn {
		c, resp, err := websocket.DefaultDialer.Dial(n.url, nil)
		if err != nil {
			return nil
		}
		_ = resp.Body.Close()
		return c
	}
	send := func(c *websocket.Conn, m protocol.ClientMessage) {
		m.Version = protocol.Version
		_ = c.WriteJSON(m)
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, _, _ = c.ReadMessage()
	}
	paths := []func(){
		func() { // nothing said
			if c := tryDial(); c != nil {
				_ = c.Close()
			}
		},
		func() { // a refused desktop hello
			if c := tryDial(); c != nil {
				send(c, protocol.ClientMessage{Type: protocol.TypeHello, ID: "h", Role: protocol.RoleDesktop, DeviceID: "x", Token: "sbt_bogus"})
				_ = c.Close()
			}
		},
		func() { // a desktop hello, past MaxUserConns or not
			if c := tryDial(); c != nil {
				send(c, protocol.ClientMessage{Type: protocol.TypeHello, ID: "h", Role: protocol.RoleDesktop, DeviceID: "x", Token: acct.ownerTok})
				send(c, protocol.ClientMessage{Type: protocol.TypeHello, ID: "h2", Role: protocol.RoleDesktop, DeviceID: "x", Token: acct.ownerTok})
				_ = c.Close()
			}
		},
		func() { // a remote hello and a wrong code, then the right one
			if c := tryDial(); c != nil {
				send(c, protocol.ClientMessage{Type: protocol.TypeHello, ID: "h", Role: protocol.RoleRemote})
				send(c, protocol.ClientMessage{Type: protocol.TypeJoin, ID: "j", Code: "999999999"})
				send(c, protocol.ClientMessage{Type: protocol.TypeJoin, ID: "j2", Code: g.Session.Code})
				_ = c.Close()
			}
		},
		func() { // a rejoin with a wrong secret
			if c := tryDial(); c != nil {
				send(c, protocol.ClientMessage{Type: protocol.TypeHello, ID: "h", Role: protocol.RoleRemote,
					Sessions: []protocol.SessionRef{{ID: g.Session.ID, Fence: "wrong"}}})
				_ = c.Close()
			}
		},
		func() { // a foreign Origin: 403 at the upgrade
			c, resp, err := websocket.DefaultDialer.Dial(n.url, http.Header{"Origin": {"http://evil.example"}})
			if err == nil {
				_ = c.Close()
			}
			if resp != nil {
				_ = resp.Body.Close()
			}
		},
		func() { // no websocket at all
			if resp, err := http.Get(httpURL); err == nil {
				_ = resp.Body.Close()
			}
		},
	}
	var wg sync.WaitGroup
	for i := range 140 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			paths[i%len(paths)]()
		}()
	}
	wg.Wait()
	require.Eventually(t, func() bool { return n.ws.Waiting("127.0.0.1") == 0 }, 10*time.Second, 20*time.Millisecond,
		"every place given back")

	// connections still waiting when the node stops give theirs back too
	for range 5 {
		rawDial(t, n.url, "")
	}
	require.Equal(t, 5, n.ws.Waiting("127.0.0.1"))
	n.stop()
	// (an upgrade whose client has its answer may still be finishing in
	// ServeHTTP: it finds the node closed and gives its place back)
	require.Eventually(t, func() bool { return n.ws.Waiting("127.0.0.1") == 0 }, 5*time.Second, 20*time.Millisecond)
}

// An address given as "" (a peer whose address has no text, a ClientAddr
// that finds none) is an address like any other: its connections' places
// come back when they end.
func TestAWaitingPlaceOfAnEmptyAddressIsGivenBack(t *testing.T) {
	t.Parallel()
	n := startNode(t, redisClient(t), fastConfig(testredis.Prefix(t)), ws.Options{MaxWaitingPerAddress: 1,
		ClientAddr: func(*http.Request) string { return "" }})
	r := rawDial(t, n.url, "")
	require.Equal(t, 1, n.ws.Waiting(""))
	require.NoError(t, r.c.Close())
	require.Eventually(t, func() bool { return n.ws.Waiting("") == 0 }, 5*time.Second, 20*time.Millisecond,
		"the place came back")
	rawDial(t, n.url, "")
}
