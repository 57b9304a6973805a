package ws_test

import (
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

// TestConcurrentWrongCodesStayWithinTheJoinLimit: docs/design.md
// ("Codes") allows one source address JoinRate (10) wrong codes a minute.
// Each join takes its place in the limit before the code is looked up, so
// wrong codes sent at the same moment over many connections from one
// address are tried no more often than that: a burst of 60 tries 10, and
// another burst as soon as one place is free again tries one more.
func TestConcurrentWrongCodesStayWithinTheJoinLimit(t *testing.T) {
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
	// a burst now, and another one as soon as the limiter has one place
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
	require.Equal(t, 2*conns, codes[protocol.CodeNotFound]+codes[protocol.CodeRateLimited], "%v", codes)
}
