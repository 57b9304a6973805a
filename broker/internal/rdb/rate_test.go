package rdb

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seatbroker/seatbroker/internal/testredis"
)

func rateStore(t *testing.T) *Store {
	t.Helper()
	s := New(testredis.Client(t), testredis.Prefix(t), Defaults{})
	t.Cleanup(s.Close)
	return s
}

// TestRateLimitTakesBeforeItAnswers: requests that arrive together each
// take their place, so no more than the burst pass, however many there are.
func TestRateLimitTakesBeforeItAnswers(t *testing.T) {
	t.Parallel()
	s := rateStore(t)
	ctx := context.Background()
	const n, burst = 50, 5
	var mu sync.Mutex
	passed := 0
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, _, err := s.Allow(ctx, "l", burst, time.Minute, burst)
			assert.NoError(t, err)
			if ok {
				mu.Lock()
				passed++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, burst, passed)
}

// TestRateLimitRefundGivesBackOneRequestAndNoMore: a refund frees one
// place for the next request, and refunds never raise a limit above its
// burst.
func TestRateLimitRefundGivesBackOneRequestAndNoMore(t *testing.T) {
	t.Parallel()
	s := rateStore(t)
	ctx := context.Background()
	allow := func() bool {
		t.Helper()
		ok, retry, err := s.Allow(ctx, "l", 3, time.Minute, 3)
		require.NoError(t, err)
		if !ok {
			assert.Positive(t, retry)
		}
		return ok
	}
	refund := func() { t.Helper(); require.NoError(t, s.Refund(ctx, "l", 3, time.Minute, 3)) }

	for range 3 {
		require.True(t, allow())
	}
	require.False(t, allow(), "the burst is used")
	refund()
	require.True(t, allow(), "a refund gives one place back")
	require.False(t, allow(), "and only one")

	// refunds of a limit that has nothing taken change nothing
	for range 9 {
		refund()
	}
	require.Zero(t, testredis.Client(t).Exists(ctx, s.keys.Rate("l")).Val(), "a full limit keeps no state")
	for range 3 {
		require.True(t, allow())
	}
	require.False(t, allow(), "no more than the burst after many refunds")
}
