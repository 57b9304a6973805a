package broker_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/seatbroker/seatbroker/broker/internal/rdb"
	"github.com/seatbroker/seatbroker/broker/protocol"
)

// The model test's comparison of the store with the model, and time
// running out (seatrules_model_test.go drives both, seatmodel_test.go is
// the model).

// runOut waits until the reaper has ended every session whose time runs
// out in this kind of seed, then lets the model's run out too.
func (h *modelHarness) runOut() {
	var due []string
	var states []string
	switch h.kind {
	case 2:
		states = []string{protocol.StateActive, protocol.StateTerminating}
	case 3:
		states = []string{protocol.StateStandby, protocol.StatePaused, protocol.StateTerminating}
	}
	for _, id := range h.m.order {
		if slices.Contains(states, h.m.sess[id].state) {
			due = append(due, id)
		}
	}
	if len(due) == 0 {
		return
	}
	require.Eventually(h.t, func() bool {
		recs := h.sessions()
		for _, id := range due {
			if recs[id].State != protocol.StateEnded {
				return false
			}
		}
		return true
	}, 5*time.Second, 5*time.Millisecond, "the reaper did not end what ran out")
	if h.kind == 2 {
		h.m.lapse()
	} else {
		h.m.expire()
	}
	h.logf("time runs out: %d sessions end", len(due))
	if h.seen != nil {
		h.seen[fmt.Sprintf("time runs out, kind %d: a session ends", h.kind)] += len(due)
	}
}

func (h *modelHarness) sessions() map[string]rdb.SessionRec {
	h.t.Helper()
	raw, err := h.rc.HGetAll(h.ctx, h.keys.Sessions(h.acct)).Result()
	require.NoError(h.t, err)
	out := make(map[string]rdb.SessionRec, len(raw))
	for id, js := range raw {
		var r rdb.SessionRec
		require.NoError(h.t, json.Unmarshal([]byte(js), &r), id)
		out[id] = r
	}
	return out
}

// check compares the store with the model, and holds the store to SPEC's
// invariants.
func (h *modelHarness) check(after string) {
	t, m := h.t, h.m
	t.Helper()
	fail := func(format string, args ...any) {
		t.Errorf("seed %d step %d, after %s: %s", h.seed, h.n, after, fmt.Sprintf(format, args...))
	}
	recs := h.sessions()
	if len(recs) != len(m.sess) {
		fail("the store has %d sessions, the model %d", len(recs), len(m.sess))
	}
	ppuSess := 0
	for _, id := range m.order {
		s, r := m.sess[id], recs[id]
		kind := ""
		if holds(r.State) {
			kind = r.Kind
		}
		reason := ""
		if r.State == protocol.StateTerminating || r.State == protocol.StateEnded {
			reason = r.Reason
		}
		if got, want := fmt.Sprintf("%s %s %s billed=%d", r.State, kind, reason, r.Billed),
			fmt.Sprintf("%s %s %s billed=%d", s.state, s.kind, s.reason, s.billed); got != want {
			fail("session %s (user %d %s) is %q in the store, %q in the model", id, s.user, s.device, got, want)
		}
		if holds(s.state) && s.kind == protocol.KindPPU {
			ppuSess++
		}
	}

	raw, err := h.rc.HGetAll(h.ctx, h.keys.Seats(h.acct)).Result()
	require.NoError(t, err)
	var lines []string
	byKey := map[string]string{}
	userKeys := map[string]int{}
	modelKeyOf := map[string]string{}
	pausedOf := map[string]string{} // session id -> the user whose paused list names it
	for f, v := range raw {
		if uid, ok := rdb.SeatsFieldUser(f); ok {
			userKeys[uid] = len(rdb.ParseUserSeats(v))
			continue
		}
		if uid, ok := rdb.SeatsFieldPaused(f); ok {
			for _, sid := range strings.Fields(v) {
				if pausedOf[sid] != "" {
					fail("session %s is in two paused lists", sid)
				}
				pausedOf[sid] = uid
			}
			continue
		}
		st, err := rdb.ParseSeat(f, v)
		require.NoError(t, err)
		line := seatLine(st.Kind, st.User, st.SIDs)
		lines = append(lines, line)
		byKey[f] = line
		// invariant 2: a seat key holds at most one seat
		for _, sid := range st.SIDs {
			ms, ok := m.sess[sid]
			if !ok {
				fail("seat %q holds session %s, which the model does not know", f, sid)
				continue
			}
			k := m.keyOf(ms)
			if other, dup := modelKeyOf[k]; dup && other != f {
				fail("seat key %s holds two seats: %q and %q", k, other, f)
			}
			modelKeyOf[k] = f
		}
	}
	sort.Strings(lines)
	if got, want := strings.Join(lines, "\n"), strings.Join(m.seatLines(), "\n"); got != want {
		fail("held seats differ:\nstore:\n%s\nmodel:\n%s", got, want)
	}
	for i, u := range m.users {
		if got, want := userKeys[u.id], m.userKeys(i); got != want {
			fail("user %d holds %d seat keys in the store, %d in the model", i, got, want)
		}
	}
	// each user's paused list (what blocking reads) names exactly its
	// paused sessions
	for _, id := range m.order {
		s := m.sess[id]
		listed := pausedOf[id]
		delete(pausedOf, id)
		switch {
		case s.state == protocol.StatePaused && listed != m.users[s.user].id:
			fail("paused session %s of user %d is in the paused list of %q", id, s.user, listed)
		case s.state != protocol.StatePaused && listed != "":
			fail("session %s is %s but in the paused list of %q", id, s.state, listed)
		}
	}
	for sid, uid := range pausedOf {
		fail("the paused list of %q names %s, a session the model does not know", uid, sid)
	}
	q, err := h.rc.ZRange(h.ctx, h.keys.PPUQueue(h.acct), 0, -1).Result()
	require.NoError(t, err)
	var queue []string
	for _, k := range q {
		queue = append(queue, byKey[k]+" (key "+k+")")
	}
	var mq []string
	for i, l := range m.queueLines() {
		if i < len(q) {
			l += " (key " + q[i] + ")"
		}
		mq = append(mq, l)
	}
	if got, want := strings.Join(queue, "\n"), strings.Join(mq, "\n"); got != want {
		fail("the PPU queue differs:\nstore:\n%s\nmodel:\n%s", got, want)
	}

	o, err := h.b.OverviewOf(h.ctx, h.acct)
	require.NoError(t, err)
	if got, want := fmt.Sprintf("seats=%d used=%d balance=%d ppu_sessions=%d ppu_keys=%d ppu=%v", o.Seats, o.InUse, o.PPUBalance, o.PPUSessions, o.PPUKeys, o.PPUEnabled),
		fmt.Sprintf("seats=%d used=%d balance=%d ppu_sessions=%d ppu_keys=%d ppu=%v", m.seats, m.used, m.balance, ppuSess, len(m.queue), m.ppu); got != want {
		fail("the overview is %q, the model's %q", got, want)
	}
	// invariant 1, and max_seats, on the store itself: a grant never takes
	// use above the limit (lowering a limit revokes nothing, so use may be
	// above it only if it did not grow)
	if h.prevUsed >= 0 && o.InUse > h.prevUsed && o.InUse > o.Seats {
		fail("prepaid seats in use went from %d to %d, above the %d seats", h.prevUsed, o.InUse, o.Seats)
	}
	h.prevUsed = o.InUse
	for i, u := range m.users {
		n := userKeys[u.id]
		if prev, ok := h.prevKeys[u.id]; ok && n > prev && u.maxSeats != nil && n > *u.maxSeats {
			fail("user %d went from %d to %d seat keys, above its max_seats %d", i, prev, n, *u.maxSeats)
		}
		h.prevKeys[u.id] = n
	}
}
