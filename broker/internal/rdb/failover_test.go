package rdb

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/seatbroker/seatbroker/internal/testredis"
)

// TestAccountCodeDropsWhatItKeptAfterFailingOverAndBack: two real Redis
// servers. A serves the account and its account code keeps a mirror of it
// (lib.lua, MIRRORS); B takes over and ends the session; A follows B with a
// partial resync (which keeps A's Lua VM, and the mirror in it, as it was)
// and then takes over again. A must act on what is stored now: its stamp
// is B's, not the one A's mirror matches.
func TestAccountCodeDropsWhatItKeptAfterFailingOverAndBack(t *testing.T) {
	ctx := context.Background()
	a, ca := startServer(t)
	b, cb := startServer(t)
	// a master pings its replicas every 10 s through the replication
	// stream: a ping A sent after B stopped following it would put A
	// ahead of B, and A's resync from B would be a full one
	for _, c := range []*redis.Client{ca, cb} {
		require.NoError(t, c.ConfigSet(ctx, "repl-ping-replica-period", "3600").Err())
	}
	prefix := testredis.Prefix(t)
	d := Defaults{Lease: time.Minute, Standby: time.Minute, Paused: time.Minute,
		Notice: 30 * time.Second, Minute: time.Minute, Retention: time.Minute}
	sa := New(ca, prefix, d)
	t.Cleanup(sa.Close)
	require.NoError(t, sa.LoadScripts(ctx))
	require.True(t, sa.UsesFunctions())
	require.NoError(t, sa.CreateAccount(ctx, "acme", map[string]string{"seats": "2"},
		UserRec{ID: "owner", Name: "owner", Role: "owner", Status: "active"}))
	_, err := sa.PutUser(ctx, "acme", UserRec{ID: "ann", Name: "ann", Role: "member", Status: "active"}, true, 1000)
	require.NoError(t, err)
	require.Equal(t, "active", sessionOf(t, runBatch(t, sa, openOp("s1", "ann", "d1"))[0]).State)
	// A's account code now mirrors s1 (active) and its seat

	follow(t, cb, a.Addr, ca) // B replicates A
	require.NoError(t, cb.ReplicaOf(ctx, "NO", "ONE").Err())
	follow(t, ca, b.Addr, cb) // A follows B: a partial resync
	require.GreaterOrEqual(t, infoInt(t, cb, "stats", "sync_partial_ok"), 1,
		"A resynced in part, so its Lua VM (and the mirror) stayed as it was")

	// nodes already running go on with FCALL on the new primary, which has
	// the library through replication (loading it again, as a starting
	// node does, would make the library anew and empty every mirror)
	sb := New(cb, prefix, d)
	t.Cleanup(sb.Close)
	sb.batch.fcall.Store(true)
	require.Equal(t, "ended", sessionOf(t, runBatch(t, sb, closeOp("s1", "ann"))[0]).State)
	require.NoError(t, cb.Do(ctx, "WAIT", 1, 5000).Err())
	require.NoError(t, ca.ReplicaOf(ctx, "NO", "ONE").Err())

	// back on A: s1 is ended and its seat is free
	r := runBatch(t, sa, op("acme", opPause, "s1", "ann", ""))[0]
	require.NoError(t, r.err)
	require.Equal(t, StatusBadState, r.res.Status, string(r.res.Payload))
	require.Equal(t, "active", sessionOf(t, runBatch(t, sa, openOp("s2", "ann", "d1"))[0]).State)
	seat, err := ca.HGet(ctx, sa.keys.Seats("acme"), "ann|d1").Result()
	require.NoError(t, err)
	require.Equal(t, "P ann s2", seat)
	used, err := ca.HGet(ctx, sa.keys.AccountHash("acme"), "used").Result()
	require.NoError(t, err)
	require.Equal(t, "1", used)
}

func startServer(t *testing.T) (*testredis.Server, *redis.Client) {
	t.Helper()
	s, err := testredis.Start()
	require.NoError(t, err)
	t.Cleanup(s.Stop)
	c := redis.NewClient(&redis.Options{Addr: s.Addr})
	t.Cleanup(func() { _ = c.Close() })
	// a full sync starts at once, not after the default 5 s wait for
	// more replicas
	require.NoError(t, c.ConfigSet(context.Background(), "repl-diskless-sync-delay", "0").Err())
	return s, c
}

// follow makes the server of c a replica of primary (whose client is pc)
// and waits until it has caught up.
func follow(t *testing.T, c *redis.Client, primary string, pc *redis.Client) {
	t.Helper()
	ctx := context.Background()
	host, port, err := net.SplitHostPort(primary)
	require.NoError(t, err)
	require.NoError(t, c.ReplicaOf(ctx, host, port).Err())
	require.Eventually(t, func() bool {
		info, err := c.Info(ctx, "replication").Result()
		return err == nil && strings.Contains(info, "master_link_status:up")
	}, 10*time.Second, 20*time.Millisecond)
	// caught up: the replica has every byte of the primary's stream. (WAIT
	// would not do: it waits for the last write of the connection it runs
	// on, and a pooled client's writes went out on other connections; a
	// replica promoted short of them made the test's resync a full one)
	require.Eventually(t, func() bool {
		return infoInt(t, c, "replication", "master_repl_offset") == infoInt(t, pc, "replication", "master_repl_offset")
	}, 10*time.Second, 5*time.Millisecond)
}

func infoInt(t *testing.T, c *redis.Client, section, field string) int {
	t.Helper()
	info, err := c.Info(context.Background(), section).Result()
	require.NoError(t, err)
	for _, l := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), field+":"); ok {
			n, err := strconv.Atoi(v)
			require.NoError(t, err)
			return n
		}
	}
	t.Fatalf("no %s in INFO %s", field, section)
	return 0
}

// TestOneNodeSweepsPerInterval: the sweep reads every account, so of the
// nodes sharing a Redis one sweeps per interval, not each of them; a node
// alone still sweeps every interval, and after a turn has run out the next
// node to look takes it.
func TestOneNodeSweepsPerInterval(t *testing.T) {
	ctx := context.Background()
	_, c := startServer(t) // a Redis of its own: its SSCANs are the sweeps'
	prefix := testredis.Prefix(t)
	d := Defaults{Lease: time.Minute, Standby: time.Minute, Paused: time.Minute,
		Notice: 30 * time.Second, Minute: time.Minute, Retention: time.Minute}
	const every = 500 * time.Millisecond
	var nodes []*Reaper
	for range 3 {
		s := New(c, prefix, d)
		t.Cleanup(s.Close)
		nodes = append(nodes, NewReaper(s, time.Hour, every, nil))
	}
	sweeps := func() int { return cmdCalls(t, c, "sscan") }
	before := sweeps()
	var ran []bool
	for _, n := range nodes {
		ok, err := n.SweepTurn(ctx)
		require.NoError(t, err)
		ran = append(ran, ok)
	}
	require.Equal(t, []bool{true, false, false}, ran, "the first node to look sweeps; the others skip this turn")
	require.Equal(t, before+1, sweeps(), "one sweep read the accounts")

	time.Sleep(every) // the turn (9/10 of the interval) has run out
	ok, err := nodes[2].SweepTurn(ctx)
	require.NoError(t, err)
	require.True(t, ok, "the next turn goes to whichever node looks first")
	require.Equal(t, before+2, sweeps())
}

// cmdCalls is how many times the server of c ran command name.
func cmdCalls(t *testing.T, c *redis.Client, name string) int {
	t.Helper()
	info, err := c.Info(context.Background(), "commandstats").Result()
	require.NoError(t, err)
	for _, l := range strings.Split(info, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(l), "cmdstat_"+name+":calls="); ok {
			n, err := strconv.Atoi(rest[:strings.IndexByte(rest, ',')])
			require.NoError(t, err)
			return n
		}
	}
	return 0
}

// A sweep refiles about SweepMax accounts, going on where the last one
// stopped (the cursor is in Redis, so whichever node sweeps next goes on):
// every account is refiled within ceil(accounts / SweepMax) sweeps, and
// no sweep reads them all. Here every account lost its entry in the
// global index (a node died between its script and filing it).
func TestSweepsGoOnWhereTheLastOneStoppedAndCoverEveryAccount(t *testing.T) {
	const accounts = 2600
	s, c, ctx := lostIndexStore(t, accounts, -1)
	require.Zero(t, c.ZCard(ctx, s.keys.DueIndex()).Val())

	other := New(c, s.keys.prefix, Defaults{}) // a second node's store
	t.Cleanup(other.Close)
	nodes := []*Reaper{NewReaper(s, time.Hour, time.Hour, nil), NewReaper(other, time.Hour, time.Hour, nil)}
	for _, n := range nodes {
		n.SweepMax = 1000
	}
	var reads []int
	for i := 0; c.ZCard(ctx, s.keys.DueIndex()).Val() < accounts; i++ {
		require.Less(t, i, 10, "every account refiled within a few sweeps")
		n, err := nodes[i%2].Sweep(ctx) // the nodes take turns
		require.NoError(t, err)
		reads = append(reads, n)
	}
	require.GreaterOrEqual(t, len(reads), 3, "no sweep read every account: %v", reads)
	for _, n := range reads {
		require.Less(t, n, 1000+sweepChunk, "a sweep reads about SweepMax accounts: %v", reads)
	}
	// each account is filed at its own first timer
	score, err := c.ZScore(ctx, s.keys.DueIndex(), "acct0042").Result()
	require.NoError(t, err)
	require.Equal(t, float64(1_000_042), score)
}

// An account the sweep cannot read (a key of the wrong type; in Redis
// Cluster, its master down until a failover) is passed over, as a reaper's
// pass does: the sweep refiles the others and goes on. Before, it stopped
// at that account's chunk without saving its cursor, and every sweep
// after started there again and stopped there again: no account anywhere
// was refiled any more.
func TestASweepPassesOverAnAccountItCannotRead(t *testing.T) {
	const accounts = 2600
	s, c, ctx := lostIndexStore(t, accounts, 7)

	r := NewReaper(s, time.Hour, time.Hour, nil)
	r.SweepMax = 1000
	failed := 0
	for i := 0; c.ZCard(ctx, s.keys.DueIndex()).Val() < accounts-1; i++ {
		require.Less(t, i, 10, "every other account refiled within a few sweeps (%d of %d)",
			c.ZCard(ctx, s.keys.DueIndex()).Val(), accounts-1)
		if _, err := r.Sweep(ctx); err != nil {
			require.ErrorContains(t, err, "acct0007", "the error names the account")
			failed++
		}
	}
	require.Positive(t, failed, "the sweep said what it could not read")
	_, err := c.ZScore(ctx, s.keys.DueIndex(), "acct0007").Result()
	require.ErrorIs(t, err, redis.Nil)
}

// lostIndexStore is a store on a Redis of its own with that many accounts
// ("acct0000"...), each with one timer (account i's at 1,000,000 + i) and
// none of them in the global index: every one lost its filing. Account
// bad (if not -1) has a due key that is no sorted set.
func lostIndexStore(t *testing.T, accounts, bad int) (*Store, *redis.Client, context.Context) {
	t.Helper()
	ctx := context.Background()
	_, c := startServer(t)
	d := Defaults{Lease: time.Minute, Standby: time.Minute, Paused: time.Minute,
		Notice: 30 * time.Second, Minute: time.Minute, Retention: time.Minute}
	s := New(c, testredis.Prefix(t), d)
	t.Cleanup(s.Close)
	require.NoError(t, s.LoadScripts(ctx))
	pipe := c.Pipeline()
	for i := range accounts {
		id := fmt.Sprintf("acct%04d", i)
		pipe.SAdd(ctx, s.keys.Accounts(), id)
		if i == bad {
			pipe.Set(ctx, s.keys.Due(id), "not a sorted set", 0)
			continue
		}
		pipe.ZAdd(ctx, s.keys.Due(id), redis.Z{Score: float64(1_000_000 + i), Member: "s1"})
	}
	_, err := pipe.Exec(ctx)
	require.NoError(t, err)
	return s, c, ctx
}
