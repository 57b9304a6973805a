package rdb

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seatbroker/seatbroker/internal/testredis"
)

// ppuStore is batchStore with one prepaid seat, PPU on and 100 minutes.
func ppuStore(t *testing.T) *Store {
	t.Helper()
	s, _ := batchStore(t, map[string]int{"ann": 0, "bob": 0})
	setSeats(t, s, 1)
	r := runBatch(t, s, op("acme", opSettings, `{"ppu":"1"}`))[0]
	require.NoError(t, r.err)
	require.Equal(t, StatusOK, r.res.Status, string(r.res.Payload))
	_, _, err := s.TopUp(context.Background(), "acme", 100, "k1", "owner", "")
	require.NoError(t, err)
	return s
}

// A session granted on PPU starts its first minute at the grant, even when
// a later operation of the same call frees a seat and promotes it at that
// very instant (docs/design.md): the minute is billed, as it would be had
// the seat freed in the next call. The call publishes the session once, as
// it leaves it (prepaid), so its event says what happened: promoted at the
// instant it changed (its at), with one minute billed.
func TestGrantOnPPUPromotedInTheSameCallPaysItsFirstMinute(t *testing.T) {
	s := ppuStore(t)
	ctx := context.Background()
	sessionOf(t, runBatch(t, s, openOp("s-ann", "ann", "d1"))[0])
	sub := s.Subscribe(ctx, "acme")
	defer sub.Close()
	_, err := sub.Receive(ctx)
	require.NoError(t, err)

	rs := runOneCall(t, s, openOp("s-bob", "bob", "d1"), closeOp("s-ann", "ann"))
	bob := sessionOf(t, rs[0])
	require.Equal(t, "ended", sessionOf(t, rs[1]).State)
	require.Equal(t, "prepaid", bob.Kind, "ann's seat went to bob")
	require.Equal(t, bob.At, bob.Promoted)
	require.Equal(t, bob.Created, bob.Promoted, "promoted at the instant it opened")
	require.Equal(t, int64(1), bob.Billed)
	require.Zero(t, bob.PPUms, "no PPU time: a stretch of length 0")

	entries, total, err := s.Ledger(ctx, "acme", 0, -1)
	require.NoError(t, err)
	require.Equal(t, int64(2), total, "the top-up and bob's first minute")
	require.Equal(t, "minute", entries[1].Kind)
	require.Equal(t, "s-bob", entries[1].Session)
	require.Equal(t, int64(1), entries[1].Minute)
	require.Equal(t, bob.Created, entries[1].At)

	var seen *SessionRec
	for seen == nil {
		select {
		case m := <-sub.Channel():
			b, err := s.keys.DecodeEvents(m.Channel, m.Payload)
			require.NoError(t, err, m.Payload)
			for _, e := range b.Events {
				if e.Session != nil && e.Session.ID == "s-bob" {
					require.Nil(t, seen, "a call publishes a session once")
					seen = e.Session
				}
			}
		case <-time.After(2 * time.Second):
			t.Fatal("the call published no event for bob")
		}
	}
	require.Equal(t, bob, *seen, "the event is the session as the call left it")
}

// warnStore is a store whose low-balance warning is at 3 minutes and whose
// PPU minute lasts an hour (so each grant on PPU bills one minute and no
// timer bills another), with an account "acme" of no prepaid seats, PPU on
// and the balance given.
func warnStore(t *testing.T, balance int64) *Store {
	t.Helper()
	c := testredis.Client(t)
	s := New(c, testredis.Prefix(t), Defaults{Lease: time.Hour, Standby: time.Hour, Paused: time.Hour,
		Notice: time.Hour, Minute: time.Hour, Retention: time.Hour, Warn: []int{3}})
	t.Cleanup(s.Close)
	ctx := context.Background()
	require.NoError(t, s.LoadScripts(ctx))
	require.NoError(t, s.CreateAccount(ctx, "acme", map[string]string{"seats": "0", "ppu": "1"},
		UserRec{ID: "owner", Name: "owner", Role: "owner", Status: "active"}))
	_, err := s.PutUser(ctx, "acme", UserRec{ID: "ann", Name: "ann", Role: "member", Status: "active"}, true, 1000)
	require.NoError(t, err)
	_, _, err = s.TopUp(ctx, "acme", balance, "first", "owner", "")
	require.NoError(t, err)
	return s
}

// The low-balance warning goes out each time the balance falls through
// its threshold, again after a top-up took it back above, and never on
// the way up. At 0 every running PPU session gets the notice and no new
// one is granted; a top-up during the notice grants again at once, and
// the notice runs on (a terminating session only ends). The ledger sums
// to the balance throughout.
func TestLowBalanceWarnsOnEveryFallThroughItsThreshold(t *testing.T) {
	s := warnStore(t, 5)
	ctx := context.Background()
	sub := s.Subscribe(ctx, "acme")
	defer sub.Close()
	_, err := sub.Receive(ctx)
	require.NoError(t, err)
	n := 0
	open := func() SessionReply {
		t.Helper()
		n++
		r, err := s.Open(ctx, "acme", fmt.Sprintf("s%d", n), "ann", fmt.Sprintf("d%d", n), "host", "")
		require.NoError(t, err)
		return r
	}
	var warned []int64 // the balance of each warning, in order
	drain := func() {
		t.Helper()
		const mark = "test: drained"
		require.NoError(t, s.Client().Publish(ctx, s.keys.Channel("acme"), mark).Err())
		for {
			select {
			case m := <-sub.Channel():
				if m.Payload == mark {
					return
				}
				b, err := s.keys.DecodeEvents(m.Channel, m.Payload)
				require.NoError(t, err, m.Payload)
				for _, e := range b.Events {
					if e.Type == "warning" {
						require.Equal(t, int64(3), e.Threshold)
						warned = append(warned, e.Balance)
					}
				}
			case <-time.After(2 * time.Second):
				t.Fatal("the channel went quiet")
			}
		}
	}
	open()
	open() // 5 -> 4 -> 3: the warning
	drain()
	require.Equal(t, []int64{3}, warned)
	_, _, err = s.TopUp(ctx, "acme", 3, "again", "owner", "") // 6: above it again, no warning
	require.NoError(t, err)
	drain()
	require.Equal(t, []int64{3}, warned)
	open()
	open()
	open() // 6 -> 3: the warning again
	drain()
	require.Equal(t, []int64{3, 3}, warned)

	var running []string
	for range 3 { // 3 -> 0
		running = append(running, open().Session.ID)
	}
	requireBalance(t, s, 0)
	var all []SessionRec
	require.NoError(t, s.ScanSessions(ctx, "acme", 100, func(r SessionRec) { all = append(all, r) }))
	for _, x := range all {
		require.Equal(t, "terminating", x.State, x.ID)
		require.Equal(t, "ppu_exhausted", x.Reason, x.ID)
	}
	require.Equal(t, StatusPPUExhausted, open().Status)
	_, _, err = s.TopUp(ctx, "acme", 2, "rescue", "owner", "")
	require.NoError(t, err)
	r := open()
	require.Equal(t, StatusOK, r.Status)
	require.Equal(t, "active", r.Session.State)
	require.Equal(t, "ppu", r.Session.Kind)
	requireBalance(t, s, 1)
	for _, id := range running {
		x, err := s.Session(ctx, "acme", id)
		require.NoError(t, err)
		require.Equal(t, "terminating", x.State, "a top-up does not call the notice off")
	}
	drain()
	require.Equal(t, []int64{3, 3}, warned, "a top-up from 0 to 2 crosses nothing on the way down")
}

// A grant on PPU comes after every PPU minute that started before it: when
// those minutes use the balance up, the account ran out at the first of
// them, and the grant is refused (ppu_exhausted) instead of taking the
// last minute while an earlier started one goes unbilled. Here the call's
// catch-up stops at its limit (one timer) with a started minute of
// another session not yet billed.
func TestGrantOnPPUComesAfterTheMinutesThatStartedBeforeIt(t *testing.T) {
	const minute = 300 * time.Millisecond
	s := laggingStore(t, minute, 4)
	ctx := context.Background()
	rs := runBatch(t, s, openOp("s-ann", "ann", "d1"), openOp("s-bob", "bob", "d1")) // 2 left
	ann, bob := sessionOf(t, rs[0]), sessionOf(t, rs[1])
	require.Equal(t, "ppu", ann.Kind)
	require.Equal(t, "ppu", bob.Kind)
	// both second minutes start at the same instant: they take the last
	// two minutes, and the account runs out then
	time.Sleep(minute + minute/3)

	r, err := s.Open(ctx, "acme", "s-cy", "cy", "d1", "host", "")
	require.NoError(t, err)
	assert.Equal(t, StatusPPUExhausted, r.Status, "the balance ran out before cy asked")
	for _, id := range []string{"s-ann", "s-bob"} {
		x, err := s.Session(ctx, "acme", id)
		require.NoError(t, err)
		assert.Equal(t, int64(2), x.Billed, "%s: its second minute started before cy's open", id)
		assert.Equal(t, "terminating", x.State, id)
		assert.Equal(t, "ppu_exhausted", x.Reason, id)
		assert.Equal(t, ann.Created+minute.Milliseconds(), x.At, "%s: the notice began when the balance ran out", id)
	}
	a, err := s.Account(ctx, "acme")
	require.NoError(t, err)
	assert.Equal(t, "0", a["balance"])
}

// laggingStore is a store whose catch-up fires one timer a call, with an
// account "acme" of no prepaid seats, PPU on and the balance given, and
// users ann, bob and cy.
func laggingStore(t *testing.T, minute time.Duration, balance int64) *Store {
	t.Helper()
	return acmePPUStore(t, Defaults{Lease: time.Hour, Standby: time.Hour, Paused: time.Hour,
		Notice: time.Hour, Minute: minute, Retention: time.Hour, CatchUp: 1}, "0", balance)
}

// The minutes a grant bills first go in time order across sessions: two
// sessions that started together, several minutes behind, share the rest
// of the balance minute by minute, and the notice begins at the minute
// that took the last of it.
func TestMinutesBilledBeforeAGrantGoInTimeOrder(t *testing.T) {
	const minute = 100 * time.Millisecond
	s := laggingStore(t, minute, 7)
	ctx := context.Background()
	rs := runBatch(t, s, openOp("s-ann", "ann", "d1"), openOp("s-bob", "bob", "d1")) // 5 left
	t0 := sessionOf(t, rs[0]).Created
	require.Equal(t, t0, sessionOf(t, rs[1]).Created)
	// minutes 2 and 3 of each leave 1, and the first minute 4 takes it
	time.Sleep(4*minute + minute/2)

	r, err := s.Open(ctx, "acme", "s-cy", "cy", "d1", "host", "")
	require.NoError(t, err)
	assert.Equal(t, StatusPPUExhausted, r.Status)
	var billed int64
	for _, id := range []string{"s-ann", "s-bob"} {
		x, err := s.Session(ctx, "acme", id)
		require.NoError(t, err)
		assert.Contains(t, []int64{3, 4}, x.Billed, id)
		billed += x.Billed
		assert.Equal(t, "terminating", x.State, id)
		assert.Equal(t, t0+3*minute.Milliseconds(), x.At, "%s: the notice began at the last minute", id)
	}
	assert.Equal(t, int64(7), billed)
}

// A seat that frees while catch-up is behind may promote a PPU session
// late, after it was billed further (an operation that names a session
// fires that session's own overdue timers first: docs/design.md). The
// promotion then never ends the session's PPU stretch before a minute it
// was billed: its record shows the PPU time its minutes started in.
func TestLatePromotionKeepsTheMinutesAlreadyBilledInsideTheStretch(t *testing.T) {
	const minute = 300 * time.Millisecond
	s := acmePPUStore(t, Defaults{Lease: 750 * time.Millisecond, Standby: time.Hour, Paused: time.Hour,
		Notice: time.Hour, Minute: minute, Retention: time.Hour, CatchUp: 1}, "1", 100)
	ctx := context.Background()
	rs := runBatch(t, s, openOp("s-ann", "ann", "d1"), openOp("s-bob", "bob", "d1"))
	require.Equal(t, "prepaid", sessionOf(t, rs[0]).Kind) // ann's lease runs out at 750 ms: never renewed
	bob := sessionOf(t, rs[1])
	require.Equal(t, "ppu", bob.Kind)
	renew := func() {
		t.Helper()
		res, _, err := s.Renew(ctx, "acme", "bob", []FenceRef{{ID: bob.ID, Fence: bob.Fence}})
		require.NoError(t, err)
		require.Equal(t, StatusOK, res[0].Status)
	}
	time.Sleep(minute + minute/2)
	renew() // at ~450 ms: bob's lease runs to ~1200 ms
	time.Sleep(2 * minute)
	// at ~1050 ms: catch-up fires one timer (bob's third minute), and the
	// heartbeat fires bob's own next (his fourth minute, at 900 ms) ahead of
	// ann's lease (750 ms)
	renew()
	r := runBatch(t, s, op("acme", opReap, "1"))[0] // ann's lease: her seat goes to bob
	require.NoError(t, r.err)
	got, err := s.Session(ctx, "acme", bob.ID)
	require.NoError(t, err)
	require.Equal(t, "prepaid", got.Kind)
	require.Equal(t, int64(4), got.Billed)
	m := minute.Milliseconds()
	assert.Greater(t, got.Promoted, bob.Created+3*m, "promoted after the start of the last minute billed")
	assert.Equal(t, got.Promoted-bob.Created, got.PPUms, "its PPU time runs to the promotion")
	assert.Equal(t, got.Billed, (got.PPUms+m-1)/m, "one minute billed per started minute of its PPU time")
}

// SPEC's rule 7 promotes the key that has waited longest. Keys that began
// waiting at one instant (one call of the account code; or two calls in
// one millisecond of Redis's clock) waited longest in the order their
// grants came, not in the order of their names: here "zed|d1" came first
// and sorts last. Found by the model-based test of the seat rules
// (broker/seatrules_model_test.go), where two opens in one millisecond
// promoted the later one.
func TestKeysThatBeganWaitingAtOneInstantArePromotedInTheOrderTheyCame(t *testing.T) {
	s, _ := batchStore(t, map[string]int{"zed": 0, "amy": 0, "bob": 0})
	setSeats(t, s, 1)
	r := runBatch(t, s, op("acme", opSettings, `{"ppu":"1"}`))[0]
	require.NoError(t, r.err)
	_, _, err := s.TopUp(context.Background(), "acme", 100, "k1", "owner", "")
	require.NoError(t, err)

	rs := runOneCall(t, s, openOp("s-bob", "bob", "d1"), openOp("s-zed", "zed", "d1"), openOp("s-amy", "amy", "d1"))
	require.Equal(t, "prepaid", sessionOf(t, rs[0]).Kind)
	require.Equal(t, "ppu", sessionOf(t, rs[1]).Kind)
	require.Equal(t, "ppu", sessionOf(t, rs[2]).Kind)
	require.Equal(t, sessionOf(t, rs[1]).Created, sessionOf(t, rs[2]).Created, "one instant")

	sessionOf(t, runBatch(t, s, closeOp("s-bob", "bob"))[0])
	zed, err := s.Session(context.Background(), "acme", "s-zed")
	require.NoError(t, err)
	amy, err := s.Session(context.Background(), "acme", "s-amy")
	require.NoError(t, err)
	assert.Equal(t, "prepaid", zed.Kind, "zed waited longest")
	assert.Equal(t, "ppu", amy.Kind)
}

// An open whose first minute takes the last of the balance is on notice
// at once (every PPU session is): its one event shows it so. The open
// used to publish it twice, once from the notice and once as the open.
func TestAnOpenThatRunsTheBalanceOutIsPublishedOnce(t *testing.T) {
	s := laggingStore(t, time.Minute, 1)
	ctx := context.Background()
	sub := s.Subscribe(ctx, "acme")
	defer sub.Close()
	_, err := sub.Receive(ctx)
	require.NoError(t, err)
	rs := runBatch(t, s, openOp("s-ann", "ann", "d1"))
	got := sessionOf(t, rs[0])
	require.Equal(t, "terminating", got.State)
	require.Equal(t, "ppu_exhausted", got.Reason)
	// the balance event ends the call's messages
	var states []string
	for balance := false; !balance; {
		select {
		case m := <-sub.Channel():
			b, err := s.keys.DecodeEvents(m.Channel, m.Payload)
			require.NoError(t, err)
			for _, e := range b.Events {
				switch {
				case e.Type == "balance":
					balance = true
				case e.Session != nil:
					states = append(states, e.Session.State)
				}
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no balance event; sessions published: %v", states)
		}
	}
	require.Equal(t, []string{"terminating"}, states)
}
