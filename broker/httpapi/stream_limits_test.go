package httpapi_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/seatbroker/seatbroker/broker"
	"github.com/seatbroker/seatbroker/broker/httpapi"
	"github.com/seatbroker/seatbroker/broker/server"
	"github.com/seatbroker/seatbroker/internal/testredis"
)

// tinyBuffers accepts connections with small socket send buffers and
// reports when the server closes one: a client that stops reading blocks
// the server's writes after a few KB instead of a few MB.
type tinyBuffers struct {
	net.Listener
	closed chan struct{} // closed when the server closes its first connection
	once   sync.Once
}

type watchedConn struct {
	net.Conn
	l *tinyBuffers
}

func (c watchedConn) Close() error {
	c.l.once.Do(func() { close(c.l.closed) })
	return c.Conn.Close()
}

func (l *tinyBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	_ = c.(*net.TCPConn).SetWriteBuffer(4096)
	return watchedConn{Conn: c, l: l}, nil
}

// A page (or a script) that opens the event stream and never reads it
// must not hold the node's goroutine and socket for ever.
func TestAnEventStreamThatIsNotReadIsDropped(t *testing.T) {
	restore := httpapi.SetStreamWriteWait(300 * time.Millisecond)
	defer restore()
	rc := testredis.Client(t)
	cfg := broker.DefaultConfig()
	cfg.Prefix = testredis.Prefix(t)
	b := startBroker(t, rc, cfg)
	ts := httptest.NewUnstartedServer(server.New(b, server.Options{}))
	l := &tinyBuffers{Listener: ts.Listener, closed: make(chan struct{})}
	ts.Listener = l
	ts.Start()
	defer ts.Close()
	e := &env{t: t, b: b, rc: rc, prefix: cfg.Prefix, srv: ts, hc: &http.Client{Transport: &http.Transport{}}, ctx: context.Background(),
		answers: &answerLog{seen: map[string]bool{}}}
	a := e.account(broker.MaxSeats, false)

	conn, err := net.Dial("tcp", ts.Listener.Addr().String())
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.(*net.TCPConn).SetReadBuffer(4096))
	_, err = fmt.Fprintf(conn, "GET /api/v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n", a.token)
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	// from here the client reads nothing, while the account changes until
	// the node drops the stream (how many changes fill the socket buffers
	// depends on how the hub coalesces them for a slow viewer: on a busy
	// machine more than on a quiet one)
	deadline := time.After(10 * time.Second)
	for i := 0; ; i++ {
		select {
		case <-l.closed:
			_, _ = io.Copy(io.Discard, resp.Body)
			return
		case <-deadline:
			t.Fatalf("the node still holds the stream of a client that reads nothing, after %d changes", 2*i)
		default:
		}
		s := a.open(a.owner.ID, fmt.Sprintf("d%d", i%300))
		_, err := b.CloseSession(e.ctx, a.id, a.owner.ID, "owner", s.ID, "")
		require.NoError(t, err)
	}
}
