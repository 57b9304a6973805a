package ws_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/seatbroker/seatbroker/broker/protocol"
	"github.com/seatbroker/seatbroker/broker/ws"
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
