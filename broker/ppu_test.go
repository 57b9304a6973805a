package broker_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seatbroker/seatbroker/broker"
	"github.com/seatbroker/seatbroker/broker/internal/rdb"
	"github.com/seatbroker/seatbroker/broker/protocol"
	"github.com/seatbroker/seatbroker/internal/testredis"
)

// Pay-per-use (SPEC.md, seat rules 4 to 7 and "Pay-per-use"). The billing
// minute is 300 ms in these tests.

func (f *fixture) ledger() []protocol.LedgerEntry {
	f.t.Helper()
	es, _, err := f.b.Ledger(f.ctx, f.owner, 0, 1000)
	require.NoError(f.t, err)
	return es
}

func (f *fixture) billedMinutes(sid string) int64 {
	f.t.Helper()
	var n int64
	for _, e := range f.ledger() {
		if e.Kind == "minute" && e.SessionID == sid {
			n++
		}
	}
	return n
}

func TestPPUWhenPrepaidSeatsAreFull(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c redis.UniversalClient) {
		f := newFixture(t, c, setup{seats: 1, ppu: true})
		f.topUp(100)
		f.mustOpen(f.user("ann", nil), "d1")
		g := f.mustOpen(f.user("bob", nil), "d1")
		assert.Equal(t, protocol.KindPPU, g.Session.Kind)
		o := f.overview()
		assert.Equal(t, int64(1), o.InUse, "PPU sessions take no prepaid seat")
		assert.Equal(t, int64(1), o.PPUSessions)
		assert.Equal(t, int64(99), o.PPUBalance, "the first started minute is billed at once")
	})
}

func TestPPUOnWithZeroBalanceDeniesWithPPUExhausted(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c redis.UniversalClient) {
		f := newFixture(t, c, setup{seats: 1, ppu: true})
		f.mustOpen(f.user("ann", nil), "d1")
		_, err := f.open(f.user("bob", nil), "d1")
		assert.ErrorIs(t, err, broker.ErrPPUExhausted)
	})
}

func TestSessionsOfPPUKeyAreEachBilled(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c redis.UniversalClient) {
		f := newFixture(t, c, setup{seats: 0, ppu: true})
		f.topUp(100)
		u := f.user("ann", nil)
		g1 := f.mustOpen(u, "d1")
		g2 := f.mustOpen(u, "d1")
		assert.Equal(t, protocol.KindPPU, g2.Session.Kind)
		assert.Equal(t, int64(1), f.billedMinutes(g1.Session.ID))
		assert.Equal(t, int64(1), f.billedMinutes(g2.Session.ID))
		assert.Equal(t, int64(98), f.overview().PPUBalance)
	})
}

func TestPPUBilledPerStartedMinuteOfActiveTime(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c redis.UniversalClient) {
		f := newFixture(t, c, setup{seats: 0, ppu: true})
		f.topUp(100)
		u := f.user("ann", nil)
		g := f.mustOpen(u, "d1")
		minute := f.b.Config().Minute
		time.Sleep(minute*2 + minute/2) // into the third minute
		require.Eventually(t, func() bool { return f.billedMinutes(g.Session.ID) == 3 }, minute, 10*time.Millisecond)
		f.close(u, g.Session.ID)
		time.Sleep(minute)
		assert.Equal(t, int64(3), f.billedMinutes(g.Session.ID), "nothing is billed after the end")
		assert.Equal(t, int64(97), f.overview().PPUBalance)
	})
}

func TestNothingBilledWhilePausedOrInStandby(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c redis.UniversalClient) {
		f := newFixture(t, c, setup{seats: 0, ppu: true, cfg: func(c *broker.Config) {
			c.Minute = 200 * time.Millisecond
			c.Paused = 5 * time.Second
			c.Standby = 5 * time.Second
		}})
		f.topUp(100)
		u := f.user("ann", nil)
		standby := f.openCode(u, "d2")
		g := f.mustOpen(u, "d1")
		_, err := f.b.Pause(f.ctx, f.acct, u.UserID, g.Session.ID, g.Fence)
		require.NoError(t, err)
		time.Sleep(700 * time.Millisecond)
		assert.Equal(t, int64(1), f.billedMinutes(g.Session.ID), "only the minute started before the pause")
		assert.Equal(t, int64(0), f.billedMinutes(standby.Session.ID))
		// resuming mid-minute continues the minute already billed
		_, err = f.b.Resume(f.ctx, f.acct, u.UserID, g.Session.ID)
		require.NoError(t, err)
		assert.LessOrEqual(t, f.billedMinutes(g.Session.ID), int64(2))
	})
}

func TestNothingBilledWhileTerminating(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c redis.UniversalClient) {
		f := newFixture(t, c, setup{seats: 0, ppu: true, cfg: func(c *broker.Config) {
			c.Minute = 100 * time.Millisecond
			c.Notice = 600 * time.Millisecond
		}})
		f.topUp(100)
		g := f.mustOpen(f.user("ann", nil), "d1")
		res, err := f.b.EndSessions(f.ctx, f.owner, []string{g.Session.ID})
		require.NoError(t, err)
		billed := f.billedMinutes(g.Session.ID)
		assert.Equal(t, protocol.StateTerminating, res[0].Session.State)
		f.waitState(g.Session.ID, protocol.StateEnded, 2*time.Second)
		assert.Equal(t, billed, f.billedMinutes(g.Session.ID))
	})
}

func TestBalanceZeroGivesEveryPPUSessionTheNotice(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c redis.UniversalClient) {
		f := newFixture(t, c, setup{seats: 1, ppu: true, cfg: func(c *broker.Config) {
			c.Minute = 200 * time.Millisecond
			c.Notice = 2 * time.Second
		}})
		f.topUp(3)
		prepaid := f.mustOpen(f.user("ann", nil), "d1")
		bob := f.user("bob", nil)
		g1 := f.mustOpen(bob, "d1")
		g2 := f.mustOpen(bob, "d2") // balance 1 after these two
		require.Eventually(t, func() bool {
			s := f.state(g1.Session.ID)
			return s.State == protocol.StateTerminating
		}, time.Second, 10*time.Millisecond)
		for _, id := range []string{g1.Session.ID, g2.Session.ID} {
			s := f.state(id)
			assert.Equal(t, protocol.StateTerminating, s.State)
			assert.Equal(t, protocol.ReasonPPUExhausted, s.Reason)
		}
		assert.Equal(t, protocol.StateActive, f.state(prepaid.Session.ID).State, "prepaid sessions are not touched")
		o := f.overview()
		assert.Equal(t, int64(0), o.PPUBalance)
		_, err := f.open(f.user("cy", nil), "d1")
		assert.ErrorIs(t, err, broker.ErrPPUExhausted)
		f.assertLedgerSumsToBalance()
	})
}

func (f *fixture) assertLedgerSumsToBalance() {
	f.t.Helper()
	var sum int64
	seen := map[string]bool{}
	for _, e := range f.ledger() {
		sum += e.Delta
		if e.Kind == "minute" {
			key := fmt.Sprintf("%s/%d", e.SessionID, e.Minute)
			assert.False(f.t, seen[key], "minute billed twice: %s", key)
			seen[key] = true
		}
	}
	assert.Equal(f.t, f.overview().PPUBalance, sum, "the ledger sums to the balance")
	assert.GreaterOrEqual(f.t, f.overview().PPUBalance, int64(0))
	r, err := f.b.Reconcile(f.ctx, f.owner)
	require.NoError(f.t, err)
	assert.True(f.t, r.OK, "%+v", r)
	assert.Equal(f.t, sum, r.LedgerSum)
}

func TestLowBalanceWarnsAdminsAndClients(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c redis.UniversalClient) {
		f := newFixture(t, c, setup{seats: 0, ppu: true, cfg: func(c *broker.Config) {
			c.LowBalance = []int{61, 59}
			c.Minute = time.Hour
		}})
		events, cancel, err := f.b.Watch(f.ctx, f.acct)
		require.NoError(t, err)
		defer cancel()
		f.topUp(62)
		f.mustOpen(f.user("ann", nil), "d1") // 61
		f.mustOpen(f.user("bob", nil), "d1") // 60: crosses 61
		var warnings []int64
		timeout := time.After(2 * time.Second)
		for len(warnings) < 1 {
			select {
			case ev := <-events:
				if ev.Type == broker.EventWarning {
					warnings = append(warnings, ev.Warning.Threshold)
					assert.Equal(t, "ppu_low", ev.Warning.Code)
				}
			case <-timeout:
				t.Fatal("no low-balance warning")
			}
		}
		assert.Equal(t, []int64{61}, warnings)
	})
}

func TestPromotionMovesLongestWaitingPPUKeyToFreedSeat(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c redis.UniversalClient) {
		f := newFixture(t, c, setup{seats: 1, ppu: true, cfg: func(c *broker.Config) { c.Minute = 200 * time.Millisecond }})
		f.topUp(100)
		ann := f.user("ann", nil)
		prepaid := f.mustOpen(ann, "d1")
		first := f.mustOpen(f.user("bob", nil), "d1")
		time.Sleep(10 * time.Millisecond)
		second := f.mustOpen(f.user("cy", nil), "d1")
		f.close(ann, prepaid.Session.ID)
		s := f.state(first.Session.ID)
		assert.Equal(t, protocol.KindPrepaid, s.Kind, "the key that waited longest moves to the prepaid seat")
		assert.Equal(t, protocol.KindPPU, f.state(second.Session.ID).Kind)
		billed := f.billedMinutes(first.Session.ID)
		time.Sleep(500 * time.Millisecond)
		assert.Equal(t, billed, f.billedMinutes(first.Session.ID), "its billing stopped at promotion")
		o := f.overview()
		assert.Equal(t, int64(1), o.InUse)
		assert.Equal(t, int64(1), o.PPUSessions)
	})
}

func TestPromotionCanBeSwitchedOff(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c redis.UniversalClient) {
		f := newFixture(t, c, setup{seats: 1, ppu: true})
		off := false
		_, err := f.b.UpdateSettings(f.ctx, f.owner, broker.SettingsPatch{Promote: &off})
		require.NoError(t, err)
		f.topUp(100)
		ann := f.user("ann", nil)
		prepaid := f.mustOpen(ann, "d1")
		waiting := f.mustOpen(f.user("bob", nil), "d1")
		f.close(ann, prepaid.Session.ID)
		assert.Equal(t, protocol.KindPPU, f.state(waiting.Session.ID).Kind)
	})
}

func TestTopUpIsRecordedOnceUnderItsKey(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c redis.UniversalClient) {
		f := newFixture(t, c, setup{seats: 1, ppu: true})
		for range 3 {
			bal, err := f.b.TopUp(f.ctx, f.owner, 50, "invoice-17", "retried")
			require.NoError(t, err)
			assert.Equal(t, int64(50), bal)
		}
		es := f.ledger()
		require.Len(t, es, 1)
		assert.Equal(t, "topup", es[0].Kind)
		assert.Equal(t, int64(50), es[0].Delta)
		f.assertLedgerSumsToBalance()
	})
}

func TestBadTopUpsChangeNothing(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c redis.UniversalClient) {
		f := newFixture(t, c, setup{seats: 1, ppu: true})
		member := f.user("ann", nil)
		before := f.snapshot()
		for _, n := range []int64{0, -5, broker.MaxTopUp + 1} {
			_, err := f.b.TopUp(f.ctx, f.owner, n, "", "")
			assert.ErrorIs(t, err, broker.ErrInvalid)
		}
		_, err := f.b.TopUp(f.ctx, member, 10, "", "")
		assert.ErrorIs(t, err, broker.ErrForbidden)
		assert.Equal(t, before, f.snapshot())
	})
}

func TestReconcileFindsABalanceThatDisagreesWithTheLedger(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c redis.UniversalClient) {
		f := newFixture(t, c, setup{seats: 0, ppu: true})
		f.topUp(10)
		f.mustOpen(f.user("ann", nil), "d1")
		r, err := f.b.Reconcile(f.ctx, f.owner)
		require.NoError(t, err)
		assert.True(t, r.OK)
		assert.Equal(t, int64(1), r.Minutes)
		// a failover lost the last balance write but kept the ledger entry
		require.NoError(t, c.HSet(f.ctx, f.b.Config().Prefix+":{"+f.acct+"}:acct", "balance", "10").Err())
		r, err = f.b.Reconcile(f.ctx, f.owner)
		require.NoError(t, err)
		assert.False(t, r.OK)
		assert.Equal(t, int64(9), r.LedgerSum)
		assert.Equal(t, int64(10), r.Balance)
	})
}

// A session's ledger holds exactly its billed minutes, in order, as the
// account's ledger has them; a user who may not see the session gets
// not_found, not its bill.
func TestSessionLedgerHoldsExactlyThatSessionsMinutes(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c redis.UniversalClient) {
		f := newFixture(t, c, setup{seats: 0, ppu: true})
		f.topUp(100)
		own := protocol.ScopeOwn
		_, err := f.b.UpdateSettings(f.ctx, f.owner, broker.SettingsPatch{View: &own, Control: &own})
		require.NoError(t, err)
		ann, bob := f.user("ann", nil), f.user("bob", nil)
		g1 := f.mustOpen(ann, "d1")
		g2 := f.mustOpen(bob, "d1")
		minute := f.b.Config().Minute
		require.Eventually(t, func() bool { return f.billedMinutes(g1.Session.ID) >= 2 }, 4*minute, 10*time.Millisecond)
		f.close(ann, g1.Session.ID)

		var want []protocol.LedgerEntry
		for _, e := range f.ledger() {
			if e.SessionID == g1.Session.ID {
				want = append(want, e)
			}
		}
		got, err := f.b.SessionLedger(f.ctx, f.owner, g1.Session.ID)
		require.NoError(t, err)
		require.Equal(t, want, got)
		for i, e := range got {
			assert.Equal(t, int64(i+1), e.Minute)
		}
		mine, err := f.b.SessionLedger(f.ctx, ann, g1.Session.ID)
		require.NoError(t, err)
		assert.Equal(t, want, mine)
		_, err = f.b.SessionLedger(f.ctx, bob, g1.Session.ID)
		assert.ErrorIs(t, err, broker.ErrNotFound)
		_ = g2
	})
}

func TestPromotionMovesSeveralKeysInWaitingOrder(t *testing.T) {
	f := onRedis(t, setup{seats: 1, ppu: true, cfg: func(c *broker.Config) { c.Minute = time.Hour }})
	f.topUp(100)
	ann := f.user("ann", nil)
	prepaid := f.mustOpen(ann, "d1")
	bob, cy, dan := f.user("bob", nil), f.user("cy", nil), f.user("dan", nil)
	b1 := f.mustOpen(bob, "d1")
	time.Sleep(5 * time.Millisecond)
	c1 := f.mustOpen(cy, "d1")
	c2 := f.mustOpen(cy, "d1") // shares cy's PPU key
	time.Sleep(5 * time.Millisecond)
	d1 := f.mustOpen(dan, "d1")
	o := f.overview()
	assert.Equal(t, int64(4), o.PPUSessions)
	assert.Equal(t, int64(3), o.PPUKeys)
	f.close(ann, prepaid.Session.ID)
	assert.Equal(t, protocol.KindPrepaid, f.state(b1.Session.ID).Kind)
	assert.Equal(t, protocol.KindPPU, f.state(c1.Session.ID).Kind)
	f.close(bob, b1.Session.ID)
	assert.Equal(t, protocol.KindPrepaid, f.state(c1.Session.ID).Kind)
	assert.Equal(t, protocol.KindPrepaid, f.state(c2.Session.ID).Kind)
	assert.Equal(t, protocol.KindPPU, f.state(d1.Session.ID).Kind)
	o = f.overview()
	assert.Equal(t, int64(1), o.InUse)
	assert.Equal(t, int64(1), o.PPUSessions)
	assert.Equal(t, int64(1), o.PPUKeys)
	f.assertLedgerSumsToBalance()
}

func TestResumeOntoAPPUKeyRunsOnPPUAndIsBilled(t *testing.T) {
	f := onRedis(t, setup{seats: 1, ppu: true, cfg: func(c *broker.Config) {
		c.Minute = 200 * time.Millisecond
		c.Paused = 10 * time.Second
		c.Lease = 10 * time.Second
		c.Heartbeat = time.Second
	}})
	f.topUp(100)
	f.mustOpen(f.user("ann", nil), "d1")
	bob := f.user("bob", nil)
	g1 := f.mustOpen(bob, "d1")
	g2 := f.mustOpen(bob, "d1")
	_, err := f.b.Pause(f.ctx, f.acct, bob.UserID, g2.Session.ID, g2.Fence)
	require.NoError(t, err)
	assert.Equal(t, int64(1), f.overview().PPUSessions)
	time.Sleep(300 * time.Millisecond)
	g3, err := f.b.Resume(f.ctx, f.acct, bob.UserID, g2.Session.ID)
	require.NoError(t, err)
	assert.Equal(t, protocol.KindPPU, g3.Session.Kind)
	assert.Equal(t, int64(2), f.overview().PPUSessions)
	// resumed in its first minute, it starts its second and third 200 and
	// 400 ms later: billed by the reaper, which a loaded machine delays
	assert.Eventually(t, func() bool { return f.billedMinutes(g2.Session.ID) >= 3 }, 3*time.Second, 20*time.Millisecond,
		"the resumed session's later minutes are billed")
	_ = g1
	f.assertLedgerSumsToBalance()
}

func TestExhaustionWhileAnotherPPUSessionTerminates(t *testing.T) {
	f := onRedis(t, setup{seats: 0, ppu: true, cfg: func(c *broker.Config) {
		c.Minute = time.Hour
		c.Notice = 5 * time.Second
		c.Lease = 10 * time.Second
		c.Heartbeat = time.Second
		c.Standby = 10 * time.Second
	}})
	f.topUp(3)
	ann := f.user("ann", nil)
	a := f.mustOpen(ann, "d1") // 2 left
	res, err := f.b.EndSessions(f.ctx, f.owner, []string{a.Session.ID})
	require.NoError(t, err)
	require.Equal(t, protocol.StateTerminating, res[0].Session.State)
	bob := f.user("bob", nil)
	sb := f.openCode(bob, "d2")              // standby on PPU
	b := f.mustOpen(bob, "d1")               // 1 left
	c := f.mustOpen(f.user("cy", nil), "d1") // 0 left: exhausted
	assert.Equal(t, protocol.StateTerminating, f.state(b.Session.ID).State)
	assert.Equal(t, protocol.ReasonPPUExhausted, f.state(b.Session.ID).Reason)
	assert.Equal(t, protocol.StateTerminating, f.state(c.Session.ID).State)
	s := f.state(a.Session.ID)
	assert.Equal(t, protocol.ReasonTerminated, s.Reason, "ending again changes nothing")
	assert.Equal(t, res[0].Session.Deadline, s.Deadline)
	assert.Equal(t, protocol.StateEnded, f.state(sb.Session.ID).State, "standby on PPU ends at once")
	o := f.overview()
	assert.Equal(t, int64(0), o.PPUBalance)
	f.assertLedgerSumsToBalance()
}

// TestEveryBilledMinuteTellsTheAccountsWatchers: a minute billed by its
// timer changes the balance and nothing else the page shows, yet the page
// "updates by itself within a second of any change": the call that bills
// publishes a balance event (one a call), and the balance it carries to
// the overview is the one billing left.
func TestEveryBilledMinuteTellsTheAccountsWatchers(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c redis.UniversalClient) {
		f := newFixture(t, c, setup{seats: 0, ppu: true, cfg: func(c *broker.Config) {
			c.Minute = 300 * time.Millisecond
		}})
		f.topUp(100)
		f.mustOpen(f.user("ann", nil), "d1") // the first minute: 99
		events, cancel, err := f.b.Watch(f.ctx, f.acct)
		require.NoError(t, err)
		defer cancel()
		timeout := time.After(2 * time.Second)
		for {
			select {
			case ev := <-events:
				if ev.Type != broker.EventBalance {
					continue
				}
				assert.Less(t, f.overview().PPUBalance, int64(99), "a later minute was billed")
				return
			case <-timeout:
				t.Fatalf("no balance event while minutes were billed (balance now %d)", f.overview().PPUBalance)
			}
		}
	})
}

// beforeLedgerRead is a go-redis hook that, once armed, runs fn once just
// before a pipeline that reads an account's ledger goes to Redis.
type beforeLedgerRead struct {
	ledger string // the ledger key
	once   sync.Once
	armed  atomic.Bool
	fn     func()
}

func (h *beforeLedgerRead) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *beforeLedgerRead) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }

func (h *beforeLedgerRead) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, c := range cmds {
			// the ledger's first read: its length (read with the balance,
			// the entries after it, a part at a time) or its entries
			if a := c.Args(); h.armed.Load() && (c.Name() == "llen" || c.Name() == "lrange") && len(a) > 1 && a[1] == h.ledger {
				h.once.Do(h.fn)
			}
		}
		return next(ctx, cmds)
	}
}

// Reconcile of an account that bills (or is topped up) while it reads
// agrees with itself: it reads the balance and the ledger as one state.
// Here a top-up lands just before the ledger is read.
func TestReconcileWhileTheAccountChangesAgrees(t *testing.T) {
	cfg := fastConfig(testredis.Prefix(t))
	hook := &beforeLedgerRead{}
	rc := redis.NewClient(&redis.Options{Addr: testredis.Addr(t)})
	rc.AddHook(hook)
	t.Cleanup(func() { _ = rc.Close() })
	b := startBroker(t, rc, cfg)
	f := accountOn(t, b, setup{seats: 0, ppu: true})
	f.topUp(10)
	f.mustOpen(f.user("ann", nil), "d1")
	other := startBroker(t, testredis.Client(t), cfg)
	hook.ledger = rdb.NewKeys(cfg.Prefix).Ledger(f.acct)
	hook.fn = func() {
		_, err := other.TopUp(context.Background(), f.owner, 5, "", "")
		assert.NoError(t, err)
	}
	hook.armed.Store(true)
	r, err := f.b.Reconcile(f.ctx, f.owner)
	require.NoError(t, err)
	assert.True(t, r.OK, "%+v", r)
	assert.Equal(t, r.Balance, r.LedgerSum)
	assert.Equal(t, int64(14), r.Balance, "the top-up is in both or in neither")
}

// Turning pay-per-use off stops new PPU spending (SPEC rule 4: "if PPU is
// on"): a session that would share a key running on PPU, opened or resumed,
// is refused account_limit like any session finding no prepaid seat, and
// nothing changes. The PPU sessions already running go on, billed, until
// they end (docs/design.md).
func TestWithPPUOffNoNewSessionJoinsAPPUKey(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c redis.UniversalClient) {
		// long times: no minute, lease or pause runs out between the snapshots
		f := newFixture(t, c, setup{seats: 1, ppu: true, cfg: func(c *broker.Config) {
			c.Minute, c.Lease, c.Paused = time.Minute, 30*time.Second, 30*time.Second
		}})
		f.topUp(100)
		f.mustOpen(f.user("ann", nil), "d1")
		bob := f.user("bob", nil)
		g1 := f.mustOpen(bob, "d1")
		g2 := f.mustOpen(bob, "d1")
		require.Equal(t, protocol.KindPPU, g1.Session.Kind)
		_, err := f.b.Pause(f.ctx, f.acct, bob.UserID, g2.Session.ID, g2.Fence)
		require.NoError(t, err)
		off := false
		_, err = f.b.UpdateSettings(f.ctx, f.owner, broker.SettingsPatch{PPUEnabled: &off})
		require.NoError(t, err)

		before := f.snapshot()
		_, err = f.open(bob, "d1")
		assert.ErrorIs(t, err, broker.ErrAccountLimit, "a new session on the PPU key")
		_, err = f.b.Resume(f.ctx, f.acct, bob.UserID, g2.Session.ID)
		assert.ErrorIs(t, err, broker.ErrAccountLimit, "a resume onto the PPU key")
		assert.Equal(t, before, f.snapshot(), "a refusal changes nothing")

		assert.Equal(t, protocol.StateActive, f.state(g1.Session.ID).State, "the running PPU session goes on")
		assert.Equal(t, protocol.KindPPU, f.state(g1.Session.ID).Kind)
		assert.Equal(t, int64(1), f.overview().PPUSessions)
	})
}

// The open that bills the last PPU minute is granted, on its notice like
// every PPU session running at 0 (docs/design.md); its key still holds its
// seat and waits, so a prepaid seat that frees during the notice promotes
// it, and its session ends at its deadline on the prepaid seat.
func TestTheGrantOfTheLastMinuteIsOnNoticeAndItsKeyIsStillPromoted(t *testing.T) {
	f := onRedis(t, setup{seats: 1, ppu: true, cfg: func(c *broker.Config) {
		c.Minute = time.Hour
		c.Notice = time.Hour
	}})
	f.topUp(1)
	ann := f.user("ann", nil)
	prepaid := f.mustOpen(ann, "d1")
	last := f.mustOpen(f.user("bob", nil), "d1")
	assert.Equal(t, protocol.StateTerminating, last.Session.State, "the last minute's grant is on notice at once")
	assert.Equal(t, protocol.ReasonPPUExhausted, last.Session.Reason)
	assert.Equal(t, protocol.KindPPU, last.Session.Kind)
	assert.Equal(t, int64(1), last.Session.PPUMinutes)

	f.close(ann, prepaid.Session.ID)
	s := f.state(last.Session.ID)
	assert.Equal(t, protocol.StateTerminating, s.State)
	assert.Equal(t, protocol.KindPrepaid, s.Kind, "the key on notice took the seat that freed")
	o := f.overview()
	assert.Equal(t, int64(1), o.InUse)
	assert.Zero(t, o.PPUKeys)
}
