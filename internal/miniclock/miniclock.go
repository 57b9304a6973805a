// Package miniclock makes an in-process miniredis expire keys as time
// passes. miniredis counts a key's TTL down only when told to
// (FastForward), for unit tests that step time by hand; seatbroker's demo
// mode and the tests that run the suite on miniredis need keys with a TTL
// to go when it runs out, as in Redis: whose turn it is to sweep, a
// token's lookup, a code's reservation, a rejoin secret.
package miniclock

import (
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"
)

// Follow moves m's TTLs on with the wall clock every tick, until the
// returned stop is called (it waits for the last move; calling it again
// does nothing).
func Follow(m *miniredis.Miniredis, tick time.Duration) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(tick)
		defer t.Stop()
		last := time.Now()
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				m.FastForward(now.Sub(last))
				last = now
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() { close(done) })
		wg.Wait()
	}
}
