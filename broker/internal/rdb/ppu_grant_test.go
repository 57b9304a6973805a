package rdb

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seatbroker/seatbroker/internal/testredis"
)

// The tests of this file hold a grant on PPU (open, resume, join) to come
// after every PPU minute that started before it (bill_started in
// timers.lua), in the ways a call can reach it: after an earlier
// operation of the same call changed sessions (their timers not filed
// again yet), after a catch-up in the middle of the call, after a
// promotion, and on a key whose sessions' leases ran out. Each runs with
// catch-up behind (one timer a call), so the started minutes are left to
// the grant. Minutes last 400 ms; each test acts about a third of a
// minute after a minute's start.

const grantMinute = 400 * time.Millisecond

// grantStore is a store whose catch-up fires one timer a call, with an
// account "acme" of the prepaid seats given, PPU on, the balance given,
// and users ann, bob, cy and zed.
func grantStore(t *testing.T, lease time.Duration, seats string, balance int64) *Store {
	t.Helper()
	return acmePPUStore(t, Defaults{Lease: lease, Standby: time.Hour, Paused: time.Hour,
		Notice: time.Hour, Minute: grantMinute, Retention: time.Hour, CatchUp: 1}, seats, balance)
}

// acmePPUStore is a store with the defaults given and an account "acme" with
// that many prepaid seats, PPU on and the balance given, and users ann,
// bob, cy and zed.
func acmePPUStore(t *testing.T, d Defaults, seats string, balance int64) *Store {
	t.Helper()
	c := testredis.Client(t)
	s := New(c, testredis.Prefix(t), d)
	t.Cleanup(s.Close)
	ctx := context.Background()
	require.NoError(t, s.LoadScripts(ctx))
	require.NoError(t, s.CreateAccount(ctx, "acme", map[string]string{"seats": seats, "ppu": "1"},
		UserRec{ID: "owner", Name: "owner", Role: "owner", Status: "active"}))
	for _, id := range []string{"ann", "bob", "cy", "zed"} {
		_, err := s.PutUser(ctx, "acme", UserRec{ID: id, Name: id, Role: "member", Status: "active"}, true, 1000)
		require.NoError(t, err)
	}
	_, _, err := s.TopUp(ctx, "acme", balance, "k1", "owner", "")
	require.NoError(t, err)
	return s
}

// sleepPast sleeps until a third of a minute after the start of minute
// n+1 of sessions created at t0 (Redis's clock, read now).
func sleepPast(t *testing.T, s *Store, t0 int64, n int) {
	t.Helper()
	tm, err := s.Client().Time(context.Background()).Result()
	require.NoError(t, err)
	m := grantMinute.Milliseconds()
	at := t0 + int64(n)*m + m/3
	if d := at - tm.UnixMilli(); d > 0 {
		time.Sleep(time.Duration(d) * time.Millisecond)
	}
}

func renewOp(uid string, x SessionRec) *call {
	return op("acme", opRenew, uid, renewList([]FenceRef{{ID: x.ID, Fence: x.Fence}}))
}

// requireBalance checks the account's balance and that the ledger sums to it.
func requireBalance(t *testing.T, s *Store, want int64) {
	t.Helper()
	ctx := context.Background()
	a, err := s.Account(ctx, "acme")
	require.NoError(t, err)
	es, _, err := s.Ledger(ctx, "acme", 0, -1)
	require.NoError(t, err)
	var sum int64
	for _, e := range es {
		sum += e.Delta
	}
	assert.Equal(t, want, sum, "the ledger sums to the balance")
	assert.Equal(t, strconv.FormatInt(want, 10), a["balance"])
}

// requireNotice checks that the session got the ppu_exhausted notice at
// at with billed minutes billed.
func requireNotice(t *testing.T, s *Store, sid string, billed, at int64) {
	t.Helper()
	x, err := s.Session(context.Background(), "acme", sid)
	require.NoError(t, err)
	assert.Equal(t, billed, x.Billed, "%s: minutes billed", sid)
	assert.Equal(t, "terminating", x.State, sid)
	assert.Equal(t, "ppu_exhausted", x.Reason, sid)
	assert.Equal(t, at, x.At, "%s: the notice began when the balance ran out", sid)
}

// A heartbeat earlier in the grant's call fires its own session's overdue
// minute (the session changed, its timer not filed again yet); the grant
// still bills the other session's started minutes first, and they run
// the balance out before it.
func TestGrantAfterAHeartbeatInItsCallBillsTheOtherSessionsMinutesFirst(t *testing.T) {
	s, ann, t0 := twoOnPPUPastMinute2(t)

	// catch-up bills one minute 2; the heartbeat ann's minutes; the open
	// bob's that are left, which take the last two minutes
	rs := runOneCall(t, s, renewOp("ann", ann), openOp("s-cy", "cy", "d1"))
	require.Equal(t, StatusOK, rs[0].res.Status)
	assert.Equal(t, StatusPPUExhausted, rs[1].res.Status, string(rs[1].res.Payload))
	requireBothRanOutInMinute3(t, s, t0)
}

// A catch-up in the middle of the grant's call (a reap operation) writes
// back what the operations before it changed and fires one timer; the
// grant after it bills what that catch-up left.
func TestGrantAfterACatchUpInItsCallBillsWhatTheCatchUpLeft(t *testing.T) {
	s, ann, t0 := twoOnPPUPastMinute2(t)

	rs := runOneCall(t, s, renewOp("ann", ann), op("acme", opReap, "1"), openOp("s-cy", "cy", "d1"))
	require.Equal(t, StatusOK, rs[0].res.Status)
	require.Equal(t, StatusOK, rs[1].res.Status)
	assert.Equal(t, StatusPPUExhausted, rs[2].res.Status, string(rs[2].res.Payload))
	requireBothRanOutInMinute3(t, s, t0)
}

// twoOnPPUPastMinute2 is an account of six PPU minutes where ann's and
// bob's sessions opened on PPU at one instant t0 (two minutes billed each,
// four left) and minutes 2 and 3 of each have started since.
func twoOnPPUPastMinute2(t *testing.T) (*Store, SessionRec, int64) {
	t.Helper()
	s := grantStore(t, time.Hour, "0", 6)
	rs := runBatch(t, s, openOp("s-ann", "ann", "d1"), openOp("s-bob", "bob", "d1")) // 4 left
	ann, bob := sessionOf(t, rs[0]), sessionOf(t, rs[1])
	t0 := ann.Created
	require.Equal(t, t0, bob.Created)
	sleepPast(t, s, t0, 2)
	return s, ann, t0
}

// requireBothRanOutInMinute3 checks that ann's and bob's sessions took the
// last minutes: both on notice from the start of their third minute, and
// the balance at 0.
func requireBothRanOutInMinute3(t *testing.T, s *Store, t0 int64) {
	t.Helper()
	m := grantMinute.Milliseconds()
	requireNotice(t, s, "s-ann", 3, t0+2*m)
	requireNotice(t, s, "s-bob", 3, t0+2*m)
	requireBalance(t, s, 0)
}

// A resume onto PPU is a grant on PPU: another session's started minutes
// that use the balance up come first, and the resume is refused; the
// session stays paused with what it was billed.
func TestResumeOntoPPUComesAfterTheMinutesThatStartedBeforeIt(t *testing.T) {
	s := grantStore(t, time.Hour, "0", 4)
	rs := runBatch(t, s, openOp("s-ann", "ann", "d1"), openOp("s-bob", "bob", "d1")) // 2 left
	t0 := sessionOf(t, rs[0]).Created
	bob := sessionOf(t, runBatch(t, s, op("acme", opPause, "s-bob", "bob", ""))[0])
	require.Equal(t, "paused", bob.State)
	sleepPast(t, s, t0, 2)

	// catch-up bills ann's minute 2; the resume first her minute 3, the last
	r, err := s.Resume(context.Background(), "acme", "s-bob", "bob")
	require.NoError(t, err)
	assert.Equal(t, StatusPPUExhausted, r.Status)
	requireNotice(t, s, "s-ann", 3, t0+2*grantMinute.Milliseconds())
	x, err := s.Session(context.Background(), "acme", "s-bob")
	require.NoError(t, err)
	assert.Equal(t, "paused", x.State)
	assert.Equal(t, int64(1), x.Billed)
	requireBalance(t, s, 0)
}

// A join of a standby session on PPU is a grant on PPU: another session's
// started minutes that use the balance up come first; the standby session
// ends (ppu_exhausted) when the balance runs out, and the join finds no
// session waiting.
func TestJoinOnPPUComesAfterTheMinutesThatStartedBeforeIt(t *testing.T) {
	s := grantStore(t, time.Hour, "0", 3)
	rs := runBatch(t, s, openOp("s-ann", "ann", "d1"), op("acme", opOpen, "s-cy", "cy", "d1", "host", "123456789")) // 2 left
	t0 := sessionOf(t, rs[0]).Created
	cy := sessionOf(t, rs[1])
	require.Equal(t, "standby", cy.State)
	require.Equal(t, "ppu", cy.Kind)
	sleepPast(t, s, t0, 2)

	r, err := s.Join(context.Background(), "acme", "s-cy", "123456789")
	require.NoError(t, err)
	assert.Equal(t, StatusNotFound, r.Status, "cy ended when the balance ran out, before the join")
	m := grantMinute.Milliseconds()
	requireNotice(t, s, "s-ann", 3, t0+2*m)
	x, err := s.Session(context.Background(), "acme", "s-cy")
	require.NoError(t, err)
	assert.Equal(t, "ended", x.State)
	assert.Equal(t, "ppu_exhausted", x.Reason)
	assert.Equal(t, t0+2*m, x.At)
	assert.Zero(t, x.Billed)
	requireBalance(t, s, 0)
}

// A seat that frees earlier in the grant's call promotes a waiting key
// (its started minutes billed to the promotion); the grant, which finds
// no prepaid seat left, bills the other PPU session's started minutes
// first, which run the balance out, and is refused.
func TestGrantAfterAPromotionInItsCallBillsTheOtherSessionsMinutesFirst(t *testing.T) {
	s := grantStore(t, time.Hour, "1", 6)
	rs := runBatch(t, s, openOp("s-zed", "zed", "d1"), openOp("s-ann", "ann", "d1"), openOp("s-bob", "bob", "d1")) // 4 left
	require.Equal(t, "prepaid", sessionOf(t, rs[0]).Kind)
	ann, bob := sessionOf(t, rs[1]), sessionOf(t, rs[2])
	require.Equal(t, "ppu", ann.Kind)
	require.Equal(t, "ppu", bob.Kind)
	t0 := ann.Created
	require.Equal(t, t0, bob.Created)
	sleepPast(t, s, t0, 2)

	rs = runOneCall(t, s, closeOp("s-zed", "zed"), openOp("s-cy", "cy", "d1"))
	require.Equal(t, StatusOK, rs[0].res.Status)
	assert.Equal(t, StatusPPUExhausted, rs[1].res.Status, string(rs[1].res.Payload))
	m := grantMinute.Milliseconds()
	x, err := s.Session(context.Background(), "acme", "s-ann")
	require.NoError(t, err)
	assert.Equal(t, "prepaid", x.Kind, "ann waited longest")
	assert.Equal(t, "active", x.State)
	assert.Equal(t, int64(3), x.Billed, "her minutes that started before the promotion")
	assert.Greater(t, x.Promoted, t0+2*m)
	requireNotice(t, s, "s-bob", 3, t0+2*m)
	requireBalance(t, s, 0)
}

// A second session on a key on PPU whose sessions' leases ran out (not
// ended yet: catch-up is behind) is a grant on PPU: it first bills their
// minutes that started before the leases ran out and ends them
// (lease_lost), and then takes a key on PPU of its own (the seat it was to
// share is free by then).
func TestGrantOnAKeyWhoseLeasesRanOutBillsTheirMinutesAndTakesAKeyOfItsOwn(t *testing.T) {
	const lease = 1000 * time.Millisecond // in the third minute
	s := grantStore(t, lease, "0", 8)
	rs := runBatch(t, s, openOp("s-ann", "ann", "d1"), openOp("s-bob", "bob", "d1")) // 6 left
	t0 := sessionOf(t, rs[0]).Created
	sleepPast(t, s, t0, 3) // both leases ran out

	r, err := s.Open(context.Background(), "acme", "s-ann2", "ann", "d1", "host", "")
	require.NoError(t, err)
	require.Equal(t, StatusOK, r.Status)
	assert.Equal(t, "ppu", r.Session.Kind)
	assert.Equal(t, "active", r.Session.State)
	assert.Equal(t, int64(1), r.Session.Billed)
	for _, id := range []string{"s-ann", "s-bob"} {
		x, err := s.Session(context.Background(), "acme", id)
		require.NoError(t, err)
		assert.Equal(t, "ended", x.State, id)
		assert.Equal(t, "lease_lost", x.Reason, id)
		assert.Equal(t, t0+lease.Milliseconds(), x.At, id)
		assert.Equal(t, int64(3), x.Billed, "%s: the minutes that started before its lease ran out", id)
	}
	seats, err := s.Seats(context.Background(), "acme")
	require.NoError(t, err)
	require.Len(t, seats, 1, "ann's key holds one seat, of the new session")
	requireBalance(t, s, 1)
}

// A grant of a prepaid seat (a second session on a held prepaid key) takes
// no minute: it leaves the PPU minutes that started before it to their
// timers (docs/design.md), which bill them as a grant on PPU would have,
// at the times they started.
func TestPrepaidGrantLeavesStartedMinutesToTheirTimers(t *testing.T) {
	s := grantStore(t, time.Hour, "1", 3)
	rs := runBatch(t, s, openOp("s-ann", "ann", "d1"), openOp("s-bob", "bob", "d1")) // 2 left
	require.Equal(t, "prepaid", sessionOf(t, rs[0]).Kind)
	bob := sessionOf(t, rs[1])
	require.Equal(t, "ppu", bob.Kind)
	t0 := bob.Created
	sleepPast(t, s, t0, 2)

	// catch-up bills bob's minute 2; the open leaves his minute 3
	r, err := s.Open(context.Background(), "acme", "s-ann2", "ann", "d1", "host", "")
	require.NoError(t, err)
	require.Equal(t, StatusOK, r.Status)
	assert.Equal(t, "prepaid", r.Session.Kind)
	x, err := s.Session(context.Background(), "acme", "s-bob")
	require.NoError(t, err)
	assert.Equal(t, "active", x.State)
	assert.Equal(t, int64(2), x.Billed)
	requireBalance(t, s, 1)

	rr := runBatch(t, s, op("acme", opReap, "10"))[0]
	require.NoError(t, rr.err)
	requireNotice(t, s, "s-bob", 3, t0+2*grantMinute.Milliseconds())
	requireBalance(t, s, 0)
}

// While catch-up is behind, the timers due by a grant's instant may be
// mostly of other kinds (here three paused times that ran out, more than
// the sessions on PPU): the grant then looks at the sessions on PPU
// instead, and still bills their started minutes first, in time order.
func TestGrantOnPPUBehindManyOtherTimersBillsTheMinutesThatStartedBeforeIt(t *testing.T) {
	s := acmePPUStore(t, Defaults{Lease: time.Hour, Standby: time.Hour, Paused: grantMinute * 3 / 4,
		Notice: time.Hour, Minute: grantMinute, Retention: time.Hour, CatchUp: 1}, "0", 9)
	rs := runBatch(t, s, openOp("s-ann", "ann", "d1"), openOp("s-bob", "bob", "d1"),
		openOp("s-z1", "zed", "d1"), openOp("s-z2", "zed", "d2"), openOp("s-z3", "zed", "d3")) // 4 left
	t0 := sessionOf(t, rs[0]).Created
	for _, r := range runBatch(t, s, op("acme", opPause, "s-z1", "zed", ""),
		op("acme", opPause, "s-z2", "zed", ""), op("acme", opPause, "s-z3", "zed", "")) {
		require.Equal(t, "paused", sessionOf(t, r).State)
	}
	sleepPast(t, s, t0, 2) // zed's paused times ran out in ann's and bob's first minute

	// catch-up ends one of zed's; the open bills ann's and bob's minutes
	// 2 and 3, the last four
	r, err := s.Open(context.Background(), "acme", "s-cy", "cy", "d1", "host", "")
	require.NoError(t, err)
	assert.Equal(t, StatusPPUExhausted, r.Status)
	m := grantMinute.Milliseconds()
	requireNotice(t, s, "s-ann", 3, t0+2*m)
	requireNotice(t, s, "s-bob", 3, t0+2*m)
	requireBalance(t, s, 0)
}
