package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seatbroker/seatbroker/client"
	"github.com/seatbroker/seatbroker/internal/testredis"
)

// signIn returns a client token of the first-run owner.
func signIn(t *testing.T, addr, account, password string) string {
	t.Helper()
	body, err := json.Marshal(map[string]string{"account": account, "name": "owner", "password": password, "kind": "client"})
	require.NoError(t, err)
	resp, err := http.Post("http://"+addr+"/api/v1/auth/signin", "application/json", bytes.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var out struct {
		Token string `json:"token"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	return out.Token
}

// TestSIGTERMWithThePageOpenSaysGoingAwayAtOnce: on SIGTERM a node tells
// its websocket clients to go elsewhere (1001) and ends the page's event
// stream (the page reconnects to another node) at once. An open License
// Usage page must not hold the node up: its event stream never ends by
// itself, and while the HTTP server waited for it (15 s) the desktop
// clients heard nothing, and an orchestrator that allows 10 s (Docker's
// default) killed the node before it said goodbye.
func TestSIGTERMWithThePageOpenSaysGoingAwayAtOnce(t *testing.T) {
	addr := freeAddr(t)
	done := make(chan error, 1)
	go func() {
		done <- run([]string{"-listen", addr, "-redis-url", "redis://" + testredis.Addr(t),
			"-prefix", testredis.Prefix(t), "-init-account", "acme", "-init-password", "correct-horse", "-log-level", "error"})
	}()
	waitHealthy(t, addr)
	tok := signIn(t, addr, "acme", "correct-horse")

	// the page's event stream
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/api/v1/events", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	streamEnded := make(chan struct{})
	go func() {
		defer close(streamEnded)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
		}
	}()

	// a desktop client holding a session
	ctx := context.Background()
	d, err := client.Dial(ctx, "http://"+addr, client.Options{Token: tok, DeviceID: "dev1", NoReconnect: true})
	require.NoError(t, err)
	defer d.Close()
	_, err = d.Open(ctx)
	require.NoError(t, err)

	require.NoError(t, syscall.Kill(syscall.Getpid(), syscall.SIGTERM))
	sigterm := time.Now()
	// well within the 10 s an orchestrator gives by default
	const within = 5 * time.Second
	var gone client.Disconnected
	timer := time.NewTimer(within)
	defer timer.Stop()
wait:
	for {
		select {
		case e := <-d.Events():
			if dis, ok := e.(client.Disconnected); ok {
				gone = dis
				break wait
			}
		case <-timer.C:
			t.Fatalf("no goodbye within %v of SIGTERM", within)
		}
	}
	t.Logf("the desktop client was told %v after SIGTERM", time.Since(sigterm))
	var ce *websocket.CloseError
	require.True(t, errors.As(gone.Err, &ce), "disconnected by %v", gone.Err)
	assert.Equal(t, websocket.CloseGoingAway, ce.Code)
	assert.True(t, strings.Contains(ce.Text, "shutting down"), ce.Text)
	select {
	case <-streamEnded:
	case <-time.After(within - time.Since(sigterm)):
		t.Fatal("the page's event stream was not ended")
	}
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(20 * time.Second):
		t.Fatal("the server did not stop on SIGTERM")
	}
}
