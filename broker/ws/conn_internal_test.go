package ws

import (
	"testing"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"

	"github.com/seatbroker/seatbroker/broker/protocol"
)

func TestSlowClientIsDisconnectedInsteadOfBlocking(t *testing.T) {
	s := New(nil, Options{SendQueue: 2})
	c := newConn(s, nil, "127.0.0.1", nil)
	for range 2 {
		c.enqueue(protocol.ServerMessage{Type: protocol.TypeWarning})
	}
	select {
	case <-c.done:
		t.Fatal("stopped before the queue was full")
	default:
	}
	c.enqueue(protocol.ServerMessage{Type: protocol.TypeWarning}) // returns at once
	<-c.done
	assert.Equal(t, websocket.ClosePolicyViolation, c.closeCode)
	assert.Len(t, c.send, 2, "nothing more queued for a client that is gone")
}
