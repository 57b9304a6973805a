package server_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/seatbroker/seatbroker/broker"
	"github.com/seatbroker/seatbroker/broker/server"
	"github.com/seatbroker/seatbroker/internal/brokertest"
	"github.com/seatbroker/seatbroker/internal/testredis"
)

// limitsNode serves a node with the timeouts to on loopback, as
// cmd/seatbroker does, and returns its address.
func limitsNode(t *testing.T, to server.Timeouts) (*broker.Broker, string) {
	t.Helper()
	cfg := broker.DefaultConfig()
	cfg.Prefix = testredis.Prefix(t)
	b := brokertest.Start(t, testredis.Client(t), cfg)
	node := server.New(b, server.Options{})
	srv := server.HTTPServer(node, to)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close(); node.Close(); <-done })
	return b, ln.Addr().String()
}

// closedByServer waits until the server closes conn, reading (and
// dropping) whatever it sends first. The wait is bounded so that a
// connection the server keeps fails the test instead of hanging it.
func closedByServer(t *testing.T, conn net.Conn) {
	t.Helper()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(10*time.Second)))
	_, err := io.Copy(io.Discard, conn)
	var ne net.Error
	require.False(t, errors.As(err, &ne) && ne.Timeout(), "the server kept the connection: %v", err)
}

// scaled are the node's timeouts made short, so the test does not wait
// for the real ones.
var scaled = server.Timeouts{ReadHeader: 300 * time.Millisecond, Read: 500 * time.Millisecond, Idle: 500 * time.Millisecond}

func TestAClientThatStallsItsBodyIsDropped(t *testing.T) {
	_, addr := limitsNode(t, scaled)
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer conn.Close()
	_, err = io.WriteString(conn, "POST /api/v1/auth/signin HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
	require.NoError(t, err)
	closedByServer(t, conn) // it never sends the rest
}

func TestAnIdleKeepAliveConnectionIsClosed(t *testing.T) {
	_, addr := limitsNode(t, scaled)
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer conn.Close()
	_, err = io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.False(t, resp.Close, "kept alive")
	closedByServer(t, conn) // and it sends nothing more
}

func TestOversizedHeadersAreRefused(t *testing.T) {
	_, addr := limitsNode(t, server.DefaultTimeouts())
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/healthz", nil)
	require.NoError(t, err)
	// (net/http allows 4 KiB over MaxHeaderBytes)
	req.Header.Set("X-Big", strings.Repeat("a", server.MaxHeaderBytes+8<<10))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusRequestHeaderFieldsTooLarge, resp.StatusCode)
}

// The page's event stream lives far longer than a request may take to
// arrive: the whole-request timeout must not end it.
func TestTheEventStreamOutlivesTheRequestTimeout(t *testing.T) {
	b, addr := limitsNode(t, scaled)
	ctx := context.Background()
	acct := "a" + uuid.NewString()[:8]
	owner, err := b.Bootstrap(ctx, broker.AccountSpec{ID: acct, Seats: 5, OwnerName: "owner"}, "correct-horse-battery")
	require.NoError(t, err)
	tok, err := b.SignIn(ctx, broker.Credentials{Account: acct, Name: "owner", Password: "correct-horse-battery"}, "test", broker.TokenClient, time.Hour)
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/api/v1/events", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	rd := bufio.NewReader(resp.Body)
	line, err := rd.ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, ": connected\n", line)

	time.Sleep(2 * scaled.Read) // what is tested: the time passing
	g, err := b.Open(ctx, broker.OpenRequest{Account: acct, UserID: owner.ID, DeviceID: "d1"})
	require.NoError(t, err)
	for {
		line, err := rd.ReadString('\n')
		require.NoError(t, err, "the stream ended")
		if strings.HasPrefix(line, "data:") && strings.Contains(line, g.Session.ID) {
			return
		}
	}
}
