package broker_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seatbroker/seatbroker/broker"
	"github.com/seatbroker/seatbroker/broker/protocol"
	"github.com/seatbroker/seatbroker/internal/testredis"
)

// TestRulesHoldOnRedisCluster runs the main flows with two broker nodes on
// a three-master Redis Cluster, with accounts spread over its slots: every
// script touches one slot, pub/sub and the reaper work across masters.
func TestRulesHoldOnRedisCluster(t *testing.T) {
	t.Parallel()
	cl := testredis.StartCluster(t)
	cfg := fastConfig(testredis.Prefix(t))
	shortLease(&cfg)
	a := startBroker(t, cl.Client(t), cfg)
	b := startBroker(t, cl.Client(t), cfg)
	slots := map[int64]bool{}
	probe := cl.Client(t)
	for range 4 {
		f := accountOn(t, a, setup{seats: 1, ppu: true})
		slot, err := probe.ClusterKeySlot(context.Background(), cfg.Prefix+":{"+f.acct+"}:acct").Result()
		require.NoError(t, err)
		slots[slot] = true

		events, cancel, err := b.Watch(f.ctx, f.acct)
		require.NoError(t, err)
		f.topUp(10)
		u := f.user("ann", nil)
		g := f.mustOpen(u, "d1")
		ppu := f.mustOpen(f.user("bob", nil), "d1")
		assert.Equal(t, protocol.KindPPU, ppu.Session.Kind)
		_, err = f.open(f.user("cy", intp(0)), "d1")
		assert.ErrorIs(t, err, broker.ErrUserLimit)

		code := f.openCode(u, "d1")
		_, acct, err := b.Join(f.ctx, code.Session.Code, "10.0.0.1")
		require.NoError(t, err)
		assert.Equal(t, f.acct, acct)

		res, err := b.EndSessions(f.ctx, f.owner, []string{g.Session.ID})
		require.NoError(t, err)
		require.True(t, res[0].OK)
		waitEvent(t, events, g.Session.ID, protocol.StateTerminating)
		// the ended seat goes to the waiting PPU key; leases lapse after
		f.waitState(g.Session.ID, protocol.StateEnded, 2*time.Second)
		f.waitState(ppu.Session.ID, protocol.StateEnded, 2*time.Second)
		r, err := b.Reconcile(f.ctx, f.owner)
		require.NoError(t, err)
		assert.True(t, r.OK)
		cancel()
	}
	assert.Greater(t, len(slots), 1, "the accounts should spread over slots")
}

func waitEvent(t *testing.T, events <-chan broker.Event, sid, state string) {
	t.Helper()
	timeout := time.After(time.Second)
	for {
		select {
		case ev := <-events:
			if ev.Session != nil && ev.Session.ID == sid && ev.Session.State == state {
				return
			}
		case <-timeout:
			t.Fatalf("no %s event for %s within 1 s", state, sid)
		}
	}
}

// TestANodeOnADownRedisClusterIsNotReady: a Redis Cluster node answers
// PING while the cluster is down (a master lost, its slots served by
// nobody), so readiness asks for the cluster's state: the node says it is
// not ready (unavailable), as with a single Redis that is gone.
func TestANodeOnADownRedisClusterIsNotReady(t *testing.T) {
	t.Parallel()
	// (last of all: go-redis retries a failed dial of the dead node in the
	// background, a second apart, until it sees its pool closed)
	t.Cleanup(func() { time.Sleep(1500 * time.Millisecond) })
	cl := testredis.StartCluster(t)
	b := startBroker(t, cl.Client(t), fastConfig(testredis.Prefix(t)))
	require.NoError(t, b.Ping(context.Background()))
	cl.Kill(0)
	// once the live masters find the cluster down (their PING still works)
	live := redis.NewClient(&redis.Options{Addr: cl.Addrs[1]})
	defer live.Close()
	require.Eventually(t, func() bool {
		info, err := live.ClusterInfo(context.Background()).Result()
		return err == nil && strings.Contains(info, "cluster_state:fail")
	}, 15*time.Second, 100*time.Millisecond, "the cluster never noticed its lost master")
	// the node says it is not ready, every time, whichever node a check reaches
	for i := range 20 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := b.Ping(ctx)
		cancel()
		require.ErrorIs(t, err, broker.ErrUnavailable, "check %d said ready", i)
	}
}

// SPEC.md, Liveness: "All times come from one clock, the Redis server's".
// On a Redis Cluster each master has its own, and an account's leases,
// deadlines and tokens are stamped by its own master (the account code
// reads TIME there), so the times the broker works out for an account
// (seconds left, a token's expiry) are on that master's clock, not on
// whichever node a clock check reached. The test's client sees node i's
// clock i hours ahead, so a time tells which node it was read on.
func TestAnAccountsTimesAreOnItsOwnMastersClock(t *testing.T) {
	t.Parallel()
	cl := testredis.StartCluster(t)
	cfg := fastConfig(testredis.Prefix(t))
	b := startBroker(t, cl.SkewedClient(t), cfg)
	require.Eventually(t, b.Ready, 3*time.Second, 10*time.Millisecond)
	ctx := context.Background()
	probe := cl.Client(t)
	owners := map[string]broker.Principal{} // master's address -> owner of an account on it
	for len(owners) < len(cl.Addrs) {
		id := "a" + uuid.NewString()[:8]
		n, err := probe.MasterForKey(ctx, cfg.Prefix+":{"+id+"}:acct")
		require.NoError(t, err)
		addr := n.Options().Addr
		if _, ok := owners[addr]; ok {
			continue
		}
		_, o, err := b.CreateAccount(ctx, broker.AccountSpec{ID: id, Seats: 1, OwnerName: "owner"})
		require.NoError(t, err)
		owners[addr], err = b.PrincipalFor(ctx, id, o.ID)
		require.NoError(t, err)
	}
	for addr, p := range owners {
		tok, err := b.IssueToken(ctx, p, time.Hour, "clock")
		require.NoError(t, err)
		assert.WithinDuration(t, time.Now().Add(cl.Skew(addr)+time.Hour), tok.Expires, 2*time.Second,
			"the token of an account on %s expires by another node's clock", addr)
		assert.WithinDuration(t, time.Now().Add(cl.Skew(addr)), b.Now(ctx, p.Account), 2*time.Second,
			"the broker's clock for an account on %s is another node's", addr)
	}
}
