package rdb

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/seatbroker/seatbroker/internal/testredis"
)

// BenchmarkScriptCycle runs open+close cycles straight through the
// batcher, one goroutine, in calls of 1 and of 12 operations, as a Redis
// function (FCALL) and as a script (EVALSHA), and
// reports Redis's own time per cycle (INFO commandstats). It is the
// serial probe of docs/benchmarks.md: with a redis-server under callgrind
// first on the PATH and SEATBROKER_CALLGRIND set (see callgrind), it also
// reports the instructions per cycle, which repeat within ~1 %.
//
//	go test -run '^$' -bench ScriptCycle -benchtime 3600x ./broker/internal/rdb/
//
// The ceiling sub-benchmark runs the make bench ceiling the same way (two
// calls of a trivial script with the account code's keys per cycle, 12
// cycles per pipeline):
// its instructions per cycle over ours is the ratio make bench measures
// when both are bound by Redis's CPU, without the machine's noise. The
// floor sub-benchmark (floor_bench_test.go) runs the least a function can
// do for an open and a close that store and publish each change, in
// calls of 12 as ours: what the account code costs beyond the bare writes.
func BenchmarkScriptCycle(b *testing.B) {
	for _, fcall := range []bool{true, false} {
		for _, per := range []int{1, 12} {
			name := fmt.Sprintf("fcall-%v/ops-per-call-%d", fcall, per)
			b.Run(name, func(b *testing.B) { scriptCycle(b, per, fcall) })
		}
	}
	b.Run("ceiling", ceilingCycle)
	b.Run("floor", floorCycle)
}

// ceilingLua is bench/store_bench_test.go's ceiling script.
const ceilingLua = `
local n = 0
for i = 1, #KEYS do n = n + redis.call('EXISTS', KEYS[i]) end
return {0, '{}', ''}
`

func ceilingCycle(b *testing.B) {
	c := testredis.Client(b)
	ctx := context.Background()
	s := New(c, testredis.Prefix(b), probeDefaults)
	b.Cleanup(s.Close)
	keys := s.keys.account("a1")
	defaults := s.batch.defaults // ARGV[1] as the store sends it
	sha, err := c.ScriptLoad(ctx, ceilingLua).Result()
	if err != nil {
		b.Fatal(err)
	}
	pid := redisPID(b, c)
	callgrind(b, "-z", pid)
	const per = 12
	rounds := (b.N + per - 1) / per
	_, usec0 := scriptStats(b, c)
	b.ResetTimer()
	for range rounds {
		for range 2 { // acquire, then release
			pipe := c.Pipeline()
			for i := range per {
				pipe.EvalSha(ctx, sha, keys, defaults, uuid.NewString(), probeUser(1, i), "desk", "host", "")
			}
			if _, err := pipe.Exec(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	_, usec1 := scriptStats(b, c)
	b.ReportMetric((usec1-usec0)/float64(rounds*per), "redis-us/cycle")
	if ir := callgrind(b, "-d", pid); ir > 0 {
		b.ReportMetric(ir/float64(rounds*per), "instr/cycle")
	}
}

// probeDefaults are the store's durations in the probe: ended sessions go
// a second after they end, so their removal falls inside the run.
var probeDefaults = Defaults{Lease: time.Hour, Standby: time.Minute, Paused: time.Minute,
	Notice: 30 * time.Second, Minute: time.Minute, Retention: time.Second}

func scriptCycle(b *testing.B, per int, fcall bool) {
	s, c := probeStore(b)
	ctx := context.Background()
	s.batch.fcall.Store(fcall)
	rounds := (b.N + per - 1) / per
	// 64 users open and close sessions over and over, as in the broker
	// bench (a user's record is then usually one the account code has
	// decoded before)
	const users = 64
	for i := range users {
		u := UserRec{ID: probeUser(1, i), Name: fmt.Sprintf("user%d", i), Status: "active", Role: "member"}
		if _, err := s.PutUser(ctx, "a1", u, true, 1_000_000); err != nil {
			b.Fatal(err)
		}
	}
	run := probeRun(b, s)
	// 64 sessions that stay open the whole run, as in the broker bench,
	// where other callers hold seats: the account's hashes never empty
	// (an emptied hash is deleted and made again, which a steady account
	// does not pay)
	held := make([]*call, 64)
	for i := range held {
		uid := probeUser(2, i)
		u := UserRec{ID: uid, Name: "held" + uid, Status: "active", Role: "member"}
		if _, err := s.PutUser(ctx, "a1", u, true, 1_000_000); err != nil {
			b.Fatal(err)
		}
		held[i] = op("a1", opOpen, uuid.NewString(), uid, "desk", "host", "")
	}
	run(held)
	mark := startCycles(b, c)
	for r := range rounds {
		opens := make([]*call, per)
		closes := make([]*call, per)
		for i := range per {
			sid, uid := uuid.NewString(), probeUser(1, (r*per+i)%users)
			opens[i] = op("a1", opOpen, sid, uid, "desk", "host", "")
		}
		for i, p := range run(opens) {
			// the desktop side closes with its grant's fencing token
			var g struct {
				Fence string `json:"fence"`
			}
			if err := json.Unmarshal(p, &g); err != nil || g.Fence == "" {
				b.Fatalf("open: no fence in %s (%v)", p, err)
			}
			a := opens[i].args
			closes[i] = op("a1", opClose, a[0], a[1], g.Fence, a[1], "closed")
		}
		run(closes)
	}
	b.StopTimer()
	reportCycles(b, c, mark, rounds*per)
}

// probeMark is where a probe's measured cycles start: Redis's pid and
// its script counters then (scriptStats).
type probeMark struct {
	pid           string
	calls0, usec0 float64
}

// startCycles zeroes callgrind's counters (when it runs Redis), takes the
// script counters and starts the benchmark's timer: the cycles after it
// are what reportCycles reports.
func startCycles(b *testing.B, c redis.UniversalClient) probeMark {
	m := probeMark{pid: redisPID(b, c)}
	callgrind(b, "-z", m.pid)
	m.calls0, m.usec0 = scriptStats(b, c)
	b.ResetTimer()
	return m
}

// reportCycles reports Redis's time and calls per cycle since m, and with
// callgrind the instructions per cycle.
func reportCycles(b *testing.B, c redis.UniversalClient, m probeMark, cycles int) {
	calls1, usec1 := scriptStats(b, c)
	n := float64(cycles)
	b.ReportMetric((usec1-m.usec0)/n, "redis-us/cycle")
	b.ReportMetric((calls1-m.calls0)/n, "calls/cycle")
	if ir := callgrind(b, "-d", m.pid); ir > 0 {
		b.ReportMetric(ir/n, "instr/cycle")
	}
}

// probeStore is the probes' store: the account a1 with room for every
// session, the account code loaded.
func probeStore(b *testing.B) (*Store, redis.UniversalClient) {
	c := testredis.Client(b)
	s := New(c, testredis.Prefix(b), probeDefaults)
	b.Cleanup(s.Close)
	ctx := context.Background()
	if err := s.LoadScripts(ctx); err != nil {
		b.Fatal(err)
	}
	if err := s.CreateAccount(ctx, "a1", map[string]string{"seats": "100000"},
		UserRec{ID: "owner", Name: "owner", Status: "active", Role: "owner"}); err != nil {
		b.Fatal(err)
	}
	return s, c
}

// probeRun returns a run of calls through s's batcher that fails the
// benchmark on any error or refusal, and returns each call's payload.
func probeRun(b *testing.B, s *Store) func(calls []*call) [][]byte {
	return func(calls []*call) [][]byte {
		s.batch.send(calls)
		out := make([][]byte, len(calls))
		for i, cl := range calls {
			r := <-cl.done
			if r.err != nil || r.res.Status != StatusOK {
				b.Fatalf("%s: %v %s", cl.op, r.err, r.res.Payload)
			}
			out[i] = r.res.Payload
		}
		return out
	}
}

// probeUser is the id of user i of a group: a UUID, as the broker makes
// them (the length of ids decides how Redis encodes the hashes: a hash
// whose values are all under 64 bytes stays a listpack, where a lookup is
// a scan, up to 512 fields).
func probeUser(group, i int) string {
	return fmt.Sprintf("%08d-0000-4000-8000-%012d", group, i)
}

func redisPID(b *testing.B, c redis.UniversalClient) string {
	info, err := c.Info(context.Background(), "server").Result()
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(l, "process_id:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// callgrind zeroes (-z) or dumps (-d) the counters of a redis-server run
// under callgrind (--callgrind-out-file=<prefix>.%p), when
// SEATBROKER_CALLGRIND=<prefix>; a dump returns the instructions counted
// since the last zero.
func callgrind(b *testing.B, cmd, pid string) float64 {
	prefix := os.Getenv("SEATBROKER_CALLGRIND")
	if prefix == "" {
		return 0
	}
	out, err := exec.Command("callgrind_control", cmd, pid).CombinedOutput()
	if err != nil {
		b.Fatalf("callgrind_control %s: %v %s", cmd, err, out)
	}
	if cmd != "-d" {
		return 0
	}
	// the dump is <prefix>.<pid>.<n>, the newest one is this one
	matches, _ := filepath.Glob(prefix + "." + pid + ".*")
	name := ""
	var newest time.Time
	for _, m := range matches {
		if st, err := os.Stat(m); err == nil && st.ModTime().After(newest) {
			name, newest = m, st.ModTime()
		}
	}
	if name == "" {
		b.Fatalf("no callgrind dump %s.%s.*", prefix, pid)
	}
	data, err := os.ReadFile(name)
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "totals: "); ok {
			// the first event is Ir (with --cache-sim more follow)
			n, _ := strconv.ParseFloat(strings.Fields(v)[0], 64)
			return n
		}
	}
	return 0
}

// scriptStats adds up Redis's counters of EVALSHA and FCALL.
func scriptStats(b *testing.B, c redis.UniversalClient) (calls, usec float64) {
	s, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimSpace(l)
		v, ok := strings.CutPrefix(l, "cmdstat_evalsha:")
		if !ok {
			if v, ok = strings.CutPrefix(l, "cmdstat_fcall:"); !ok {
				continue
			}
		}
		for _, kv := range strings.Split(v, ",") {
			k, x, _ := strings.Cut(kv, "=")
			f, _ := strconv.ParseFloat(x, 64)
			switch k {
			case "calls":
				calls += f
			case "usec":
				usec += f
			}
		}
	}
	return calls, usec
}
