package main

import (
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seatbroker/seatbroker/internal/testredis"
)

func TestMain(m *testing.M) { testredis.Main(m) }

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().String()
}

func waitHealthy(t *testing.T, addr string) {
	t.Helper()
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 10*time.Second, 20*time.Millisecond)
}

// TestStopsGracefullyOnSIGTERM runs the server against a real Redis, with
// a first-run account, and stops it as an orchestrator would.
func TestStopsGracefullyOnSIGTERM(t *testing.T) {
	addr := freeAddr(t)
	done := make(chan error, 1)
	go func() {
		done <- run([]string{"-listen", addr, "-redis-url", "redis://" + testredis.Addr(t),
			"-prefix", testredis.Prefix(t), "-init-account", "acme", "-init-password", "correct-horse", "-log-level", "error"})
	}()
	waitHealthy(t, addr)
	resp, err := http.Get("http://" + addr + "/readyz")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	require.NoError(t, syscall.Kill(syscall.Getpid(), syscall.SIGTERM))
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(20 * time.Second):
		t.Fatal("the server did not stop on SIGTERM")
	}
}

func TestConfigFromEnvironment(t *testing.T) {
	t.Setenv("SEATBROKER_LEASE", "45s")
	t.Setenv("SEATBROKER_NOTICE", "10s")
	t.Setenv("SEATBROKER_LISTEN", "127.0.0.1:9999")
	t.Setenv("SEATBROKER_LOW_BALANCE", "30,5")
	o, err := parseOptions(nil)
	require.NoError(t, err)
	assert.Equal(t, 45*time.Second, o.cfg.Lease)
	assert.Equal(t, 10*time.Second, o.cfg.Notice)
	assert.Equal(t, "127.0.0.1:9999", o.listen)
	assert.Equal(t, []int{30, 5}, o.cfg.LowBalance)
	assert.True(t, o.demo, "no Redis URL: demo mode")
	// a flag wins over the environment
	o, err = parseOptions([]string{"-lease", "20s"})
	require.NoError(t, err)
	assert.Equal(t, 20*time.Second, o.cfg.Lease)
}

func TestBadConfigIsRefused(t *testing.T) {
	_, err := parseOptions([]string{"-heartbeat", "40s", "-lease", "30s"})
	assert.ErrorContains(t, err, "heartbeat must be shorter than the lease")
	_, err = parseOptions([]string{"-low-balance", "x"})
	assert.Error(t, err)
}
