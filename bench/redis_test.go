package bench

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/seatbroker/seatbroker/internal/testredis"
)

// server is this binary's own redis-server: nothing else runs on it, so
// its CPU time and command counts are the benchmarks' alone.
var server *testredis.Server

func TestMain(m *testing.M) {
	srv, err := testredis.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	server = srv
	code := m.Run()
	srv.Stop()
	os.Exit(code)
}

// newClient returns a client of the benchmark server with the options
// cmd/seatbroker uses for a single Redis (a pool of at least 64), closed
// when b ends. The broker and the raw ceiling use the same options.
func newClient(b testing.TB) *redis.Client {
	b.Helper()
	c := redis.NewClient(&redis.Options{Addr: server.Addr, PoolSize: 64})
	b.Cleanup(func() { _ = c.Close() })
	return c
}

// redisStats is what Redis says it did: CPU time of the whole server and
// per-command counts and time (INFO commandstats, which counts commands
// that scripts call as well as top-level ones).
type redisStats struct {
	cpuUsec  float64 // used_cpu_sys + used_cpu_user, µs
	commands map[string]cmdStat
}

type cmdStat struct {
	calls int64
	usec  int64
}

// readStats reads INFO cpu and INFO commandstats in one call.
func readStats(ctx context.Context, c *redis.Client) (redisStats, error) {
	info, err := c.Info(ctx, "cpu", "commandstats").Result()
	if err != nil {
		return redisStats{}, err
	}
	st := redisStats{commands: map[string]cmdStat{}}
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		name, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch {
		case name == "used_cpu_sys" || name == "used_cpu_user":
			f, err := strconv.ParseFloat(val, 64)
			if err != nil {
				return redisStats{}, fmt.Errorf("INFO %s: %w", name, err)
			}
			st.cpuUsec += f * 1e6
		case strings.HasPrefix(name, "cmdstat_"):
			var cs cmdStat
			for _, kv := range strings.Split(val, ",") {
				k, v, _ := strings.Cut(kv, "=")
				switch k {
				case "calls":
					cs.calls, _ = strconv.ParseInt(v, 10, 64)
				case "usec":
					cs.usec, _ = strconv.ParseInt(v, 10, 64)
				}
			}
			st.commands[strings.TrimPrefix(name, "cmdstat_")] = cs
		}
	}
	return st, sc.Err()
}

// since is the difference of two readings.
func (s redisStats) since(before redisStats) redisStats {
	d := redisStats{cpuUsec: s.cpuUsec - before.cpuUsec, commands: map[string]cmdStat{}}
	for name, cs := range s.commands {
		b := before.commands[name]
		if cs.calls != b.calls {
			d.commands[name] = cmdStat{calls: cs.calls - b.calls, usec: cs.usec - b.usec}
		}
	}
	return d
}

// add sums two differences.
func (s redisStats) add(o redisStats) redisStats {
	d := redisStats{cpuUsec: s.cpuUsec + o.cpuUsec, commands: map[string]cmdStat{}}
	for name, cs := range s.commands {
		d.commands[name] = cs
	}
	for name, cs := range o.commands {
		c := d.commands[name]
		d.commands[name] = cmdStat{calls: c.calls + cs.calls, usec: c.usec + cs.usec}
	}
	return d
}
