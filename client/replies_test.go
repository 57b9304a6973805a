package client_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"

	"github.com/seatbroker/seatbroker/broker/protocol"
	"github.com/seatbroker/seatbroker/client"
)

// scripted is a websocket server the test drives: it welcomes one client
// (with a heartbeat too slow to come during the test), hands the test every
// request it reads, and sends what the test gives it, in order. A real node
// answers too fast to let a request give up before its reply.
type scripted struct {
	url  string
	reqs chan protocol.ClientMessage
	out  chan protocol.ServerMessage
}

func startScripted(t *testing.T) *scripted {
	t.Helper()
	s := &scripted{reqs: make(chan protocol.ClientMessage, 16), out: make(chan protocol.ServerMessage, 16)}
	done := make(chan struct{})
	up := websocket.Upgrader{}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer func() { _ = ws.Close() }()
		var hello protocol.ClientMessage
		if err := ws.ReadJSON(&hello); err != nil {
			return
		}
		welcome := protocol.ServerMessage{Type: protocol.TypeWelcome, ID: hello.ID, Version: protocol.Version,
			Role: hello.Role, HeartbeatMS: time.Minute.Milliseconds(), LeaseMS: 3 * time.Minute.Milliseconds()}
		if err := ws.WriteJSON(welcome); err != nil {
			return
		}
		quit := make(chan struct{})
		defer close(quit)
		go func() {
			for {
				select {
				case m := <-s.out:
					if ws.WriteJSON(m) != nil {
						return
					}
				case <-quit:
					return
				case <-done:
					return
				}
			}
		}()
		for {
			_, data, err := ws.ReadMessage()
			if err != nil {
				return
			}
			var m protocol.ClientMessage
			if json.Unmarshal(data, &m) == nil {
				s.reqs <- m
			}
		}
	}))
	t.Cleanup(func() { close(done); hs.Close() })
	s.url = hs.URL
	return s
}

// An error that answers a request which gave up (its ctx ended) is not an
// error the server sent out of the blue: the request already returned
// ctx's error, and a refusal changed nothing. It is dropped, not reported
// as a ServerError (which says "a client bug"). An error that answers no
// request of the client still is.
func TestALateErrorForARequestThatGaveUpIsNoServerError(t *testing.T) {
	s := startScripted(t)
	c := dialAt(t, s.url, client.Options{Token: "sbt_scripted", DeviceID: "late-error"})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := c.Pause(ctx, "s1")
		errc <- err
	}()
	var req protocol.ClientMessage
	select {
	case req = <-s.reqs:
	case <-time.After(5 * time.Second):
		t.Fatal("the pause was never sent")
	}
	require.Equal(t, protocol.TypePause, req.Type)
	cancel()
	require.ErrorIs(t, <-errc, context.Canceled)

	// the reply comes after the request gave up; a warning comes after it
	s.out <- protocol.ServerMessage{Type: protocol.TypeError, ID: req.ID,
		Error: &protocol.ErrorDetail{Code: protocol.CodeNotFound, Message: "no such session"}}
	s.out <- protocol.ServerMessage{Type: protocol.TypeWarning,
		Warning: &protocol.Warning{Code: "ppu_low", Message: "after the late reply", Balance: 9, Threshold: 10}}
	e := next(t, c, 5*time.Second)
	w, ok := e.(client.Warning)
	require.True(t, ok, "the late reply to a request that gave up came as an event: %#v", e)
	require.Equal(t, "after the late reply", w.Message)

	// an error that answers nothing the client asked is still told
	s.out <- protocol.ServerMessage{Type: protocol.TypeError, ID: "not-ours",
		Error: &protocol.ErrorDetail{Code: protocol.CodeInvalidRequest, Message: "unsolicited"}}
	e = next(t, c, 5*time.Second)
	se, ok := e.(client.ServerError)
	require.True(t, ok, "an unsolicited error was not told: %#v", e)
	require.Equal(t, "unsolicited", se.Error.Message)
}

func dialAt(t *testing.T, url string, opts client.Options) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, url, opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}
