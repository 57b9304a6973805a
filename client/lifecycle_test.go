package client_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seatbroker/seatbroker/broker/protocol"
	"github.com/seatbroker/seatbroker/client"
)

// cutter is a dialer whose connections the test can cut, and whose new
// dials it can refuse.
type cutter struct {
	mu      sync.Mutex
	conns   []net.Conn // guarded by mu
	refused bool       // guarded by mu
}

func (k *cutter) dialer() *websocket.Dialer {
	return &websocket.Dialer{HandshakeTimeout: 5 * time.Second, NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		k.mu.Lock()
		refused := k.refused
		k.mu.Unlock()
		if refused {
			return nil, errors.New("refused by the test")
		}
		var d net.Dialer
		nc, err := d.DialContext(ctx, network, addr)
		if err == nil {
			k.mu.Lock()
			k.conns = append(k.conns, nc)
			k.mu.Unlock()
		}
		return nc, err
	}}
}

// cut closes every connection; refuse also turns new ones away.
func (k *cutter) cut(refuse bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.refused = refuse
	for _, nc := range k.conns {
		_ = nc.Close()
	}
	k.conns = nil
}

func dialT(t *testing.T, opts client.Options) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, nodeURL, opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// next reads one event, failing after within or if the channel is closed.
func next(t *testing.T, c *client.Client, within time.Duration) client.Event {
	t.Helper()
	select {
	case e, ok := <-c.Events():
		require.True(t, ok, "events closed")
		return e
	case <-time.After(within):
		t.Fatalf("no event within %v", within)
		return nil
	}
}

func waitEvent[T client.Event](t *testing.T, c *client.Client, within time.Duration) T {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		if e, ok := next(t, c, time.Until(deadline)).(T); ok {
			return e
		}
	}
}

func TestEventsCloseOnceTheClientStopsForGood(t *testing.T) {
	k := &cutter{}
	c := dialT(t, client.Options{Token: annToken, DeviceID: "stops-1", Dialer: k.dialer(), NoReconnect: true})
	k.cut(true)
	waitEvent[client.Stopped](t, c, 3*time.Second)
	select {
	case e, ok := <-c.Events():
		assert.False(t, ok, "an event after Stopped: %#v", e)
	case <-time.After(2 * time.Second):
		t.Fatal("Events stays open after the client stopped for good")
	}
}

func TestCloseWhileReconnectingSendsNoStopped(t *testing.T) {
	k := &cutter{}
	c, err := client.Dial(context.Background(), nodeURL, client.Options{Token: annToken, DeviceID: "stops-2", Dialer: k.dialer(),
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond})
	require.NoError(t, err)
	k.cut(true)
	waitEvent[client.Disconnected](t, c, 3*time.Second)
	time.Sleep(50 * time.Millisecond) // a few refused attempts
	require.NoError(t, c.Close())
	for e := range c.Events() {
		_, stopped := e.(client.Stopped)
		assert.False(t, stopped, "Stopped after Close: %#v", e)
	}
}

func TestRequestsAfterCloseFailWithErrClosed(t *testing.T) {
	k := &cutter{}
	c, err := client.Dial(context.Background(), nodeURL, client.Options{Token: annToken, DeviceID: "stops-3", Dialer: k.dialer(), NoReconnect: true})
	require.NoError(t, err)
	k.cut(true)
	waitEvent[client.Stopped](t, c, 3*time.Second)
	require.NoError(t, c.Close())
	for range 50 {
		_, err := c.Open(context.Background())
		require.ErrorIs(t, err, client.ErrClosed)
	}
}

func TestOpenWithAnEndedContextTakesNoSeat(t *testing.T) {
	c := dialT(t, client.Options{Token: annToken, DeviceID: "cancelled-open"})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.Open(ctx)
	require.ErrorIs(t, err, context.Canceled)
	// replies come in order: once this one is in, a grant would be too
	_, err = c.Pause(context.Background(), "no-such-session")
	require.Error(t, err)
	assert.Empty(t, c.Sessions())
}

func TestDialRefusesAnAddressWithoutSchemeOrHost(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:8080", "http:///ws", "ws://"} {
		_, err := client.Dial(context.Background(), addr, client.Options{Token: "x", DeviceID: "d"})
		require.Error(t, err, addr)
		assert.Contains(t, err.Error(), "client: the address", addr)
	}
}

func TestOneClientServesManyGoroutinesAtOnce(t *testing.T) {
	c := dialT(t, client.Options{Token: annToken, DeviceID: "many-goroutines"})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 3 {
				g, err := c.Open(ctx)
				if !assert.NoError(t, err) {
					return
				}
				_ = c.Sessions()
				_, err = c.CloseSession(ctx, g.Session.ID)
				assert.NoError(t, err)
			}
		}()
	}
	wg.Wait()
	assert.Empty(t, c.Sessions())
}

func TestCloseEndsARequestInFlight(t *testing.T) {
	c, err := client.Dial(context.Background(), nodeURL, client.Options{Token: annToken, DeviceID: "close-in-flight"})
	require.NoError(t, err)
	errs := make(chan error, 8)
	for range 8 {
		go func() { _, err := c.Pause(context.Background(), "no-such-session"); errs <- err }()
	}
	require.NoError(t, c.Close())
	for range 8 {
		select {
		case err := <-errs:
			assert.Error(t, err)
		case <-time.After(3 * time.Second):
			t.Fatal("a request outlived Close")
		}
	}
}

func TestRemoteComesBackToItsSessionAfterACut(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	desk := dialT(t, client.Options{Token: annToken, DeviceID: "rejoin-desk"})
	g, err := desk.Open(ctx, client.WithCode())
	require.NoError(t, err)
	k := &cutter{}
	remote := dialT(t, client.Options{Role: client.RoleRemote, Dialer: k.dialer(), MinBackoff: 10 * time.Millisecond})
	_, err = remote.Join(ctx, g.Session.Code)
	require.NoError(t, err)
	k.cut(false)
	waitEvent[client.Disconnected](t, remote, 3*time.Second)
	r := waitEvent[client.Reconnected](t, remote, 3*time.Second)
	require.Len(t, r.Sessions, 1)
	assert.Equal(t, g.Session.ID, r.Sessions[0].ID)
	_, err = remote.CloseSession(ctx, g.Session.ID)
	require.NoError(t, err)
	waitEvent[client.Ended](t, desk, 3*time.Second)
	waitEvent[client.Stopped](t, remote, 3*time.Second)
}

// A client without reconnect that loses its connection stops, but its
// sessions are not lost: the broker holds them until their leases run out
// (SPEC.md, Liveness). So it reports no Lost, keeps them in Sessions, and
// a new client given them takes them back on the same seat.
func TestANoReconnectClientThatLosesItsConnectionKeepsItsSessionsForTheNextClient(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	k := &cutter{}
	c := dialT(t, client.Options{Token: annToken, DeviceID: "no-reconnect-keeps", Dialer: k.dialer(), NoReconnect: true})
	g, err := c.Open(ctx)
	require.NoError(t, err)
	before, err := demo.OverviewOf(ctx, owner.Account)
	require.NoError(t, err)

	k.cut(true)
	for {
		e := next(t, c, 3*time.Second)
		_, lost := e.(client.Lost)
		require.False(t, lost, "a session the broker still holds was reported lost: %#v", e)
		if s, ok := e.(client.Stopped); ok {
			require.ErrorIs(t, s.Err, client.ErrDisconnected)
			break
		}
	}
	refs := c.Sessions()
	require.Equal(t, []protocol.SessionRef{{ID: g.Session.ID, Fence: g.Fence}}, refs,
		"the stopped client forgot the sessions a new one could take back")

	c2 := dialT(t, client.Options{Token: annToken, DeviceID: "no-reconnect-keeps", Sessions: refs})
	require.Equal(t, refs, c2.Sessions(), "the new client did not take the session back")
	after, err := demo.OverviewOf(ctx, owner.Account)
	require.NoError(t, err)
	require.Equal(t, before.InUse, after.InUse, "taking the session back took another license")
	_, err = c2.CloseSession(ctx, g.Session.ID)
	require.NoError(t, err)
}

// TestDialTriesTheOtherAddressesWhenANodeIsDown: a node that is down when
// the client starts does not keep it from the others it was given.
func TestDialTriesTheOtherAddressesWhenANodeIsDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	down := "ws://" + l.Addr().String() + "/ws"
	require.NoError(t, l.Close()) // nothing listens there now
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, down, client.Options{Token: annToken, DeviceID: "dev-fallback", Addresses: []string{nodeURL}})
	require.NoError(t, err)
	defer c.Close()
	g, err := c.Open(ctx)
	require.NoError(t, err)
	_, err = c.CloseSession(ctx, g.Session.ID)
	require.NoError(t, err)
}
