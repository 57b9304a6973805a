package client

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestBackoffGrowsWithJitterAndStaysUnderItsCeiling(t *testing.T) {
	lo, hi := 100*time.Millisecond, time.Second
	for n := range 12 {
		want := min(lo<<n, hi)
		for range 50 {
			d := backoff(n, lo, hi)
			assert.GreaterOrEqual(t, d, want/2)
			assert.LessOrEqual(t, d, want)
		}
	}
}

func TestEventQueueNeverBlocksItsSenderAndClosesItsChannel(t *testing.T) {
	q := newQueue()
	for range 10 * eventBuffer {
		q.push(Reconnected{}) // nobody reads
	}
	q.close()
	n := 0
	for range q.out {
		n++
	}
	assert.LessOrEqual(t, n, eventBuffer+1)
	assert.Positive(t, n)
}

func TestAddressesBecomeWebsocketURLs(t *testing.T) {
	for in, want := range map[string]string{
		"http://127.0.0.1:8080":     "ws://127.0.0.1:8080/ws",
		"https://broker.example/":   "wss://broker.example/ws",
		"ws://127.0.0.1:8080/ws":    "ws://127.0.0.1:8080/ws",
		"wss://b.example/custom/ws": "wss://b.example/custom/ws",
	} {
		got, err := wsURL(in)
		assert.NoError(t, err)
		assert.Equal(t, want, got)
	}
	_, err := wsURL("ftp://x")
	assert.Error(t, err)
}
