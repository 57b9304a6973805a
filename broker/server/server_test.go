package server_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/seatbroker/seatbroker/broker"
	"github.com/seatbroker/seatbroker/broker/server"
	"github.com/seatbroker/seatbroker/internal/brokertest"
	"github.com/seatbroker/seatbroker/internal/testredis"
)

func TestMain(m *testing.M) {
	testredis.Main(m, func() error { return goleak.Find() })
}

func TestNotReadyAndGrantsNothingWhileRedisIsUnreachable(t *testing.T) {
	srv, err := testredis.Start() // its own Redis, to stop it mid-test
	require.NoError(t, err)
	defer srv.Stop()
	c := redis.NewClient(&redis.Options{Addr: srv.Addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer c.Close()
	cfg := broker.DefaultConfig()
	cfg.Prefix = testredis.Prefix(t)
	b, err := broker.New(c, cfg, nil)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = b.Run(ctx) }()
	defer func() { cancel(); b.Close(); wg.Wait() }()
	hs := httptest.NewServer(server.New(b, server.Options{}))
	defer hs.Close()

	status := func(path string) int {
		resp, err := http.Get(hs.URL + path)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, http.StatusOK, status("/healthz"))
	require.Equal(t, http.StatusOK, status("/readyz"))
	head, err := http.Head(hs.URL + "/readyz") // probes use either method
	require.NoError(t, err)
	head.Body.Close()
	require.Equal(t, http.StatusOK, head.StatusCode)
	srv.Stop()
	require.Equal(t, http.StatusOK, status("/healthz"), "alive, though not ready")
	require.Equal(t, http.StatusServiceUnavailable, status("/readyz"))

	// nothing new is granted, with the code clients know
	octx, ocancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer ocancel()
	_, err = b.Open(octx, broker.OpenRequest{Account: "acme", UserID: "2b0c5f6e-7a43-4d6f-9a55-2c9d0e1f3a4b", DeviceID: "d1"})
	require.ErrorIs(t, err, broker.ErrUnavailable)
	d, code := broker.ErrorDetail(err)
	require.Equal(t, "unavailable", string(d.Code))
	require.Equal(t, http.StatusServiceUnavailable, code)
}

// TestNodeStartedWhileRedisWasDownMovesToTheFunctionOnceItAnswers: the
// account code loads once Redis answers, so the node does not stay on the
// slower script path for its whole life.
func TestNodeStartedWhileRedisWasDownMovesToTheFunctionOnceItAnswers(t *testing.T) {
	var up atomic.Bool
	var d net.Dialer
	c := redis.NewClient(&redis.Options{Addr: testredis.Addr(t), MaxRetries: -1, DialTimeout: 200 * time.Millisecond,
		Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if !up.Load() {
				return nil, errors.New("test: redis is down")
			}
			return d.DialContext(ctx, network, addr)
		}})
	t.Cleanup(func() { _ = c.Close() }) // after the node's cleanup
	cfg := broker.DefaultConfig()
	cfg.Prefix = testredis.Prefix(t)
	b := brokertest.Start(t, c, cfg) // logs the failed load on stderr

	// long enough for the first load and go-redis's own dial retries to
	// give up
	time.Sleep(2 * time.Second)
	require.False(t, b.Ready())
	require.False(t, b.UsesFunctions())
	up.Store(true)
	require.Eventually(t, b.UsesFunctions, 10*time.Second, 50*time.Millisecond)
}
