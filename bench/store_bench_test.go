package bench

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seatbroker/seatbroker/broker"
)

var (
	flagRounds = flag.Int("rounds", 5, "bench: rounds of each measurement (medians are quoted)")
	flagRound  = flag.Duration("round", 3*time.Second, "bench: length of one measurement in a round")
	flagOnly   = flag.String("only", "", "bench: run only these measurements (comma-separated: own, shared, spread, plain; the pipelined ceiling always runs), for A/B work")
)

// Targets of project issue 2.
const (
	inFlight     = 64   // cycles in flight
	targetRatio  = 0.6  // our cycles/s over the raw ceiling's, at least
	targetCPU    = 15.0 // Redis CPU per cycle, µs, at most
	pipeConns    = 4    // connections of the pipelined ceiling
	sharedUsers  = 8    // seat keys of the shared-seats run
	benchAccount = "bench"
	sharedAcct   = "bench-shared"
	spreadAcct   = "bench-spread"
)

// ceilingLua is the raw ceiling: a script with the account scripts' KEYS
// (all 11 of broker/internal/rdb/keys.go account()) and ARGV shape that
// touches each key once and answers in the same shape, doing nothing else.
const ceilingLua = `
local n = 0
for i = 1, #KEYS do n = n + redis.call('EXISTS', KEYS[i]) end
return {0, '{}', ''}
`

// accountKeys mirrors the store's account() key list.
func accountKeys(prefix, acct string) []string {
	t := prefix + ":{" + acct + "}:"
	names := []string{"acct", "users", "sess", "seats", "ppuq", "due", "ledger", "billed", "events", "names", "ret"}
	keys := make([]string, len(names))
	for i, n := range names {
		keys[i] = t + n
	}
	return keys
}

// benchWorld is a broker node with two accounts: one where each of the 64
// workers has its own user and device (every cycle takes and frees a seat
// of its own), and one where they share sharedUsers seat keys (most opens
// join a seat someone else holds).
type benchWorld struct {
	br      *broker.Broker
	own     []worker
	shared  []worker
	spread  []worker // each worker in an account of its own
	keys    []string
	cfgJSON string
}

type worker struct {
	acct, uid, name, device string
}

func newWorld(b *testing.B, ctx context.Context, client *redis.Client) *benchWorld {
	b.Helper()
	cfg := broker.DefaultConfig()
	cfg.Prefix = "bench:v1"
	// Ended sessions are deleted a second after they end, so a session's
	// whole life - open, close and deletion - falls inside the run and
	// each cycle pays for it; with the default 10 minutes the deletions
	// would come after the benchmark and be missed.
	cfg.Retention = time.Second
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	br, err := broker.New(client, cfg, log)
	if err != nil {
		b.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = br.Run(rctx) }()
	b.Cleanup(func() { cancel(); br.Close(); wg.Wait() })

	w := &benchWorld{br: br, keys: accountKeys(cfg.Prefix, benchAccount)}
	ownP := mkAccount(b, ctx, br, benchAccount)
	sharedP := mkAccount(b, ctx, br, sharedAcct)
	var sharedW []worker
	for i := range sharedUsers {
		sharedW = append(sharedW, mkWorker(b, ctx, br, sharedP, fmt.Sprintf("shared%d", i), "desk"))
	}
	for i := range inFlight {
		w.own = append(w.own, mkWorker(b, ctx, br, ownP, fmt.Sprintf("user%d", i), fmt.Sprintf("dev%d", i)))
		w.shared = append(w.shared, sharedW[i%sharedUsers])
		p := mkAccount(b, ctx, br, fmt.Sprintf("%s-%d", spreadAcct, i))
		w.spread = append(w.spread, mkWorker(b, ctx, br, p, "user", "dev"))
	}
	// the same ARGV[1] as the store sends (rdb.New), so the ceiling ships
	// as many bytes per call
	js, _ := json.Marshal(map[string]any{
		"lease": cfg.Lease.Milliseconds(), "standby": cfg.Standby.Milliseconds(),
		"paused": cfg.Paused.Milliseconds(), "notice": cfg.Notice.Milliseconds(),
		"minute": cfg.Minute.Milliseconds(), "retention": cfg.Retention.Milliseconds(),
		"warn": cfg.LowBalance, "catchup": 100,
	})
	w.cfgJSON = string(js)
	return w
}

func mkAccount(b *testing.B, ctx context.Context, br *broker.Broker, id string) broker.Principal {
	b.Helper()
	_, owner, err := br.CreateAccount(ctx, broker.AccountSpec{ID: id, Seats: 10 * inFlight, OwnerName: "owner"})
	if err != nil {
		b.Fatal(err)
	}
	p, err := br.PrincipalFor(ctx, id, owner.ID)
	if err != nil {
		b.Fatal(err)
	}
	return p
}

func mkWorker(b *testing.B, ctx context.Context, br *broker.Broker, owner broker.Principal, name, device string) worker {
	b.Helper()
	u, err := br.AddUser(ctx, owner, broker.UserSpec{Name: name})
	if err != nil {
		b.Fatal(err)
	}
	return worker{acct: owner.Account, uid: u.ID, name: name, device: device}
}

// cycle is one acquire+release through the broker API: Open (active, no
// code) and CloseSession by the session's own user, with its grant's
// fencing token (as the desktop client closes).
func (w *benchWorld) cycle(ws []worker) op {
	return func(ctx context.Context, i int) (int, error) {
		wk := ws[i]
		g, err := w.br.Open(ctx, broker.OpenRequest{Account: wk.acct, UserID: wk.uid, DeviceID: wk.device, DeviceName: "bench-host"})
		if err != nil {
			return 0, fmt.Errorf("open: %w", err)
		}
		if _, err := w.br.CloseSession(ctx, wk.acct, wk.uid, wk.name, g.Session.ID, g.Fence); err != nil {
			return 0, fmt.Errorf("close: %w", err)
		}
		return 1, nil
	}
}

// rawArgs is ARGV of a raw call: the defaults and five short strings, like
// open.lua's.
func (w *benchWorld) rawArgs(i int) []any {
	return []any{w.cfgJSON, "00000000-0000-0000-0000-000000000000", fmt.Sprintf("user%d", i), "dev", "bench-host", ""}
}

// rawPlain is the ceiling unpipelined: each worker calls EVALSHA twice in
// a row on a pooled connection, as a caller without batching would.
func (w *benchWorld) rawPlain(client *redis.Client, sha string) op {
	return func(ctx context.Context, i int) (int, error) {
		args := w.rawArgs(i)
		for range 2 {
			if err := client.EvalSha(ctx, sha, w.keys, args...).Err(); err != nil {
				return 0, err
			}
		}
		return 1, nil
	}
}

// rawPipe is the ceiling pipelined: pipeConns workers each keep
// inFlight/pipeConns cycles in flight as two pipelines in a row, so 64
// cycles are in flight on 4 connections, each cycle two round trips.
func (w *benchWorld) rawPipe(client *redis.Client, sha string) op {
	depth := inFlight / pipeConns
	return func(ctx context.Context, i int) (int, error) {
		args := w.rawArgs(i)
		for range 2 {
			pipe := client.Pipeline()
			for range depth {
				pipe.EvalSha(ctx, sha, w.keys, args...)
			}
			if _, err := pipe.Exec(ctx); err != nil {
				return 0, err
			}
		}
		return depth, nil
	}
}

// BenchmarkAcquireRelease measures acquire+release cycles through the
// broker API at 64 in flight beside the raw EVALSHA ceiling, in alternating
// rounds, and prints the medians with the ratio and Redis's CPU per cycle.
// It fails only when a cycle fails: speed is reported, not asserted.
func BenchmarkAcquireRelease(b *testing.B) {
	ctx := context.Background()
	client := newClient(b)
	w := newWorld(b, ctx, client)
	sha, err := client.ScriptLoad(ctx, ceilingLua).Result()
	if err != nil {
		b.Fatal(err)
	}
	type meas struct {
		s       *series
		workers int
		fn      op
	}
	ours := &series{name: "broker, own seats"}
	shared := &series{name: "broker, shared seats"}
	spread := &series{name: "broker, 64 accounts"}
	plain := &series{name: "raw EVALSHA x2"}
	piped := &series{name: "raw EVALSHA x2, pipelined"}
	all := []struct {
		key string
		m   meas
	}{
		{"own", meas{ours, inFlight, w.cycle(w.own)}},
		{"plain", meas{plain, inFlight, w.rawPlain(client, sha)}},
		{"shared", meas{shared, inFlight, w.cycle(w.shared)}},
		{"spread", meas{spread, inFlight, w.cycle(w.spread)}},
		{"piped", meas{piped, pipeConns, w.rawPipe(client, sha)}},
	}
	var ms []meas
	for _, x := range all {
		if *flagOnly == "" || x.key == "piped" || slices.Contains(strings.Split(*flagOnly, ","), x.key) {
			ms = append(ms, x.m)
		}
	}
	run := func(m meas, d time.Duration) sample {
		s, err := drive(ctx, client, m.workers, d, m.fn)
		if err != nil {
			b.Fatalf("%s: %v", m.s.name, err)
		}
		if s.cycles == 0 {
			b.Fatalf("%s: %v", m.s.name, errNoCycles)
		}
		return s
	}
	for _, m := range ms { // warm up: scripts loaded, pools filled
		run(m, *flagRound/6)
	}
	b.ResetTimer()
	for r := range *flagRounds {
		// rotate the order so that no measurement always runs first
		for k := range ms {
			m := ms[(r+k)%len(ms)]
			m.s.samples = append(m.s.samples, run(m, *flagRound))
		}
	}
	b.StopTimer()
	accts := []string{benchAccount, sharedAcct}
	for i := range inFlight {
		accts = append(accts, fmt.Sprintf("%s-%d", spreadAcct, i))
	}
	for _, acct := range accts {
		o, err := w.br.OverviewOf(ctx, acct)
		if err != nil {
			b.Fatal(err)
		}
		if o.InUse != 0 {
			b.Fatalf("%s: %d seats still in use after every session closed", acct, o.InUse)
		}
	}

	ceiling := plain
	if piped.perSec() > plain.perSec() {
		ceiling = piped
	}
	report(b, ours, shared, spread, plain, piped, ceiling)
}

func report(b *testing.B, ours, shared, spread, plain, piped, ceiling *series) {
	out := os.Stdout
	ver := redisVersion()
	fmt.Fprintf(out, "\nacquire+release cycles, %d in flight; median of %d rounds of %v; redis-server %s, GOMAXPROCS %d\n",
		inFlight, *flagRounds, *flagRound, ver, runtime.GOMAXPROCS(0))
	fmt.Fprintf(out, "%-28s %10s %8s %8s %10s %11s %6s %8s %8s\n", "measurement", "cycles/s", "p50 µs", "p99 µs", "redis µs", "script µs", "busy", "go µs", "ratio")
	for _, s := range []*series{ours, shared, spread, plain, piped} {
		if len(s.samples) == 0 {
			continue // left out by -only
		}
		fmt.Fprintf(out, "%-28s %10.0f %8.0f %8.0f %10.2f %11.2f %6.2f %8.2f %8.2f\n",
			s.name, s.perSec(), s.p50(), s.p99(), s.cpu(), s.eval(), s.busy(), s.proc(), s.ratio(ceiling))
	}
	fmt.Fprintf(out, "(redis µs: Redis CPU per cycle from INFO cpu; script µs: EVALSHA and FCALL from commandstats; busy: Redis CPU over wall time;\n"+
		" go µs: this process's CPU per cycle - broker node and load, on the same cores as Redis; ratio: to the ceiling, per round)\n")
	fmt.Fprintf(out, "ceiling: %s (the better of the two raw runs)\n", ceiling.name)
	ratio, cpu := ours.ratio(ceiling), ours.cpu()
	fmt.Fprintf(out, "ours/ceiling %.2f (target >= %.1f): %s\n", ratio, targetRatio, verdict(ratio >= targetRatio))
	fmt.Fprintf(out, "Redis CPU per cycle %.2f µs (target <= %.0f µs): %s\n", cpu, targetCPU, verdict(cpu <= targetCPU))
	fmt.Fprintf(out, "what Redis ran per cycle (all rounds; calls and µs, scripts' inner commands included):\n")
	for _, s := range []*series{ours, shared, spread, ceiling} {
		if len(s.samples) == 0 {
			continue
		}
		printCommands(out, s)
	}
	fmt.Fprintln(out)

	b.ReportMetric(1e9/ours.perSec(), "ns/op")
	b.ReportMetric(ours.perSec(), "cycles/s")
	b.ReportMetric(ceiling.perSec(), "ceiling-cycles/s")
	b.ReportMetric(ratio, "ratio")
	b.ReportMetric(cpu, "redis-us/cycle")
	b.ReportMetric(ours.p50(), "p50-us")
	b.ReportMetric(ours.p99(), "p99-us")
	b.ReportMetric(shared.ratio(ceiling), "shared-ratio")
	b.ReportMetric(shared.cpu(), "shared-redis-us/cycle")
	b.ReportMetric(spread.ratio(ceiling), "spread-ratio")
	b.ReportMetric(spread.cpu(), "spread-redis-us/cycle")
}

func verdict(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}

func redisVersion() string {
	c := redis.NewClient(&redis.Options{Addr: server.Addr})
	defer c.Close()
	info, err := c.Info(context.Background(), "server").Result()
	if err != nil {
		return "?"
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
			return v
		}
	}
	return "?"
}
