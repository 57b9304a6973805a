package server_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/seatbroker/seatbroker/broker"
	"github.com/seatbroker/seatbroker/broker/server"
	"github.com/seatbroker/seatbroker/internal/testredis"
)

func TestMain(m *testing.M) {
	testredis.Main(m, func() error { return goleak.Find() })
}

func TestNotReadyWhileRedisIsUnreachable(t *testing.T) {
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
	srv.Stop()
	require.Equal(t, http.StatusOK, status("/healthz"), "alive, though not ready")
	require.Equal(t, http.StatusServiceUnavailable, status("/readyz"))
}
