//go:build measure

package broker_test

import (
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/seatbroker/seatbroker/broker"
)

// TestMeasureManyAccounts is a measurement run by hand, not a check:
// (a build tag keeps it out of make test, which runs every test it
// compiles and allows no skip)
// SEATBROKER_ACCOUNTS=10000 go test -tags measure -run TestMeasureManyAccounts -v ./broker/
// It makes that many accounts with two live sessions each and prints
// what the reaper costs Redis while nothing is due, and with a sweep.
func TestMeasureManyAccounts(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("SEATBROKER_ACCOUNTS"))
	if n == 0 {
		n = 10000
	}
	c := privateRedis(t)
	f := newFixture(t, c, setup{seats: 5, cfg: func(c *broker.Config) {
		longTimers(c)
		c.SweepInterval = time.Second
	}})
	t0 := time.Now()
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 16 {
				g := accountOn(t, f.b, setup{seats: 5})
				u := g.user("ann", nil)
				g.mustOpen(u, "d1")
				g.mustOpen(u, "d2")
			}
		}()
	}
	wg.Wait()
	t.Logf("%d accounts with 2 sessions each in %v", n, time.Since(t0))
	used, _ := c.Info(f.ctx, "memory").Result()
	for _, l := range splitLines(used) {
		if len(l) > 12 && l[:12] == "used_memory:" {
			t.Logf("Redis %s", l)
		}
	}
	require.NoError(t, c.ConfigResetStat(f.ctx).Err())
	time.Sleep(3 * time.Second) // what is measured: 3 s of an idle node (15 reaper passes, 3 sweeps)
	calls := commandCalls(t, c)
	info, _ := c.Info(f.ctx, "commandstats").Result()
	t.Logf("3 s idle: %v\n%s", calls, info)
}

func splitLines(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return out
}

// TestMeasurePrepaidOpenBesidePPUSessions is a measurement run by hand:
// SEATBROKER_PPU_SESSIONS=3000 go test -tags measure -run TestMeasurePrepaidOpenBesidePPUSessions -v ./broker/
// An account runs that many sessions on PPU with a balance under their
// number (so every grant on PPU first bills the minutes started before
// it); it prints how long a prepaid open (a second session on a held
// prepaid seat) takes, and Redis's longest FCALL.
func TestMeasurePrepaidOpenBesidePPUSessions(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("SEATBROKER_PPU_SESSIONS"))
	if n == 0 {
		n = 3000
	}
	c := privateRedis(t)
	f := newFixture(t, c, setup{seats: 1, ppu: true, cfg: func(c *broker.Config) {
		longTimers(c)
		c.Minute = time.Hour
	}})
	f.topUp(int64(n) * 5 / 3)
	f.mustOpen(f.owner, "d0") // the one prepaid seat
	var users []broker.Principal
	for i := range (n + 29) / 30 {
		users = append(users, f.user("u"+strconv.Itoa(i), nil))
	}
	for i := range n {
		f.mustOpen(users[i/30], "d"+strconv.Itoa(i%30))
	}
	require.NoError(t, c.ConfigSet(f.ctx, "slowlog-log-slower-than", "0").Err())
	require.NoError(t, c.SlowLogReset(f.ctx).Err())
	var took []time.Duration
	for range 20 {
		t0 := time.Now()
		f.mustOpen(f.owner, "d0") // shares the prepaid seat
		took = append(took, time.Since(t0))
	}
	longest := func() time.Duration {
		logs, err := c.SlowLogGet(f.ctx, 1000).Result()
		require.NoError(t, err)
		var max time.Duration
		for _, l := range logs {
			if len(l.Args) > 0 && l.Args[0] == "fcall" && l.Duration > max {
				max = l.Duration
			}
		}
		require.NoError(t, c.SlowLogReset(f.ctx).Err())
		return max
	}
	t.Logf("%d PPU sessions: 20 prepaid opens took %v; longest FCALL %v", n, took, longest())
	// and 20 grants on PPU: new keys, with no prepaid seat free
	took = took[:0]
	for i := range 20 {
		t0 := time.Now()
		f.mustOpen(f.owner, "p"+strconv.Itoa(i))
		took = append(took, time.Since(t0))
	}
	t.Logf("%d PPU sessions: 20 opens on PPU took %v; longest FCALL %v", n, took, longest())
}
