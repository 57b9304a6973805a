package broker_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/seatbroker/seatbroker/broker"
	"github.com/seatbroker/seatbroker/broker/internal/rdb"
	"github.com/seatbroker/seatbroker/broker/protocol"
	"github.com/seatbroker/seatbroker/internal/testredis"
)

// TestSeatRulesAgreeWithTheModel drives the broker and the reference model
// of seatmodel_test.go with the same random operations (open with or
// without a code, join, pause, resume, close, End Selected Sessions by the
// owner or a member, block and unblock, seats, max_seats, top-up, PPU,
// promotion and counting mode changes, and bad input), one goroutine, and
// after every step compares each outcome (granted prepaid or PPU, or the
// code of the refusal), every session's state, kind, reason and PPU
// minutes, the held seats and their sessions, the PPU queue in promotion
// order, the account's counters, and SPEC's invariants 1 and 2 and the
// users' max_seats on the store itself; and at the end of a seed, that
// the PPU ledger sums to the balance (invariant 3).
//
// Time is covered by four kinds of seeds (seed mod 4), each on a broker
// of its own: 0 and 1 keep notices for ten minutes, so terminating
// sessions stay while later steps act on them, and nothing else runs out;
// 2 has leases of 30 ms and nobody heartbeats, so every active or
// terminating session loses its lease in the step it became so; 3 has
// notices of 20 ms and standby and paused times of 30 ms. Seeds of kinds 2
// and 3 wait at the end of each step until the reaper has ended what ran
// out (an event of the store: the sessions' states), and the model lets
// the same run out, before the two are compared.
//
// SEATMODEL_SEEDS and SEATMODEL_STEPS run more (defaults 6 and 200);
// SEATMODEL_SEED=n starts at seed n (and runs it alone unless
// SEATMODEL_SEEDS says how many); SEATMODEL_BACKEND=miniredis runs it on
// the demo mode's in-process Redis. A failure prints its seed and the
// operations that led to it.
func TestSeatRulesAgreeWithTheModel(t *testing.T) {
	seeds, steps := envInt(t, "SEATMODEL_SEEDS", 6), envInt(t, "SEATMODEL_STEPS", 200)
	first := 0
	if v := os.Getenv("SEATMODEL_SEED"); v != "" {
		first, seeds = envInt(t, "SEATMODEL_SEED", 0), envInt(t, "SEATMODEL_SEEDS", 1)
	}
	client := testredis.Client(t)
	if os.Getenv("SEATMODEL_BACKEND") == "miniredis" {
		// the demo mode's in-process Redis, by hand
		c, ok := testredis.Backends()[1].Client(t).(*redis.Client)
		require.True(t, ok)
		client = c
	}
	var brokers [4]*broker.Broker
	for kind := range brokers {
		if kind == 1 {
			brokers[kind] = brokers[0]
			continue
		}
		brokers[kind] = startBroker(t, client, modelConfig(testPrefix(t), kind))
	}
	seen := map[string]int{} // operation and outcome -> how often
	for seed := first; seed < first+seeds; seed++ {
		ok := t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			h := newModelHarness(t, brokers[seed%4], client, uint64(seed))
			h.seen = seen
			for range steps {
				h.step()
				if t.Failed() {
					return
				}
			}
			// invariant 3: the ledger sums to the balance, no minute twice
			r, err := h.b.Reconcile(h.ctx, h.owner)
			require.NoError(t, err)
			require.True(t, r.OK, "%+v", r)
			require.Equal(t, h.m.balance, r.Balance)
		})
		if !ok {
			t.Logf("replay: SEATMODEL_SEED=%d SEATMODEL_STEPS=%d go test -race -count=1 -run 'TestSeatRulesAgreeWithTheModel' ./broker/", seed, steps)
			return
		}
	}
	var lines []string
	for k, n := range seen {
		lines = append(lines, fmt.Sprintf("%6d %s", n, k))
	}
	sort.Strings(lines)
	t.Logf("%d seeds of %d steps; operations and outcomes seen:\n%s", seeds, steps, strings.Join(lines, "\n"))
}

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	require.NoError(t, err, name)
	return n
}

// modelConfig is the config of seeds of a kind (see the test): leases,
// standby and paused times and retention last hours, and a PPU minute is
// an hour, but for what the kind runs out.
func modelConfig(prefix string, kind int) broker.Config {
	c := broker.DefaultConfig()
	c.Prefix = prefix
	c.Lease = time.Hour
	c.Standby = time.Hour
	c.Paused = 8 * time.Hour
	c.Minute = time.Hour
	c.Retention = time.Hour
	c.Notice = 20 * time.Millisecond
	c.ReapInterval = 10 * time.Millisecond
	switch kind {
	case 2:
		c.Lease, c.Heartbeat = 30*time.Millisecond, 10*time.Millisecond
	case 3:
		c.Standby, c.Paused = 30*time.Millisecond, 30*time.Millisecond
	}
	return c
}

// modelHarness is one seed's run: an account on the broker and the model
// of it.
type modelHarness struct {
	t     *testing.T
	ctx   context.Context
	b     *broker.Broker
	rc    *redis.Client
	keys  rdb.Keys
	acct  string
	owner broker.Principal
	rng   *rand.Rand
	m     *seatModel
	kind  int // seed mod 4: what runs out at the end of a step
	codes map[string]string
	fence map[string]string
	stale map[string]string // a fence a resume replaced
	joins map[string]bool   // sessions a remote side joined
	log   []string
	n     int
	seed  uint64
	// what the last check saw, for the invariants
	prevUsed int64
	prevKeys map[string]int
	seen     map[string]int
}

func newModelHarness(t *testing.T, b *broker.Broker, rc *redis.Client, seed uint64) *modelHarness {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 0x5ea7))
	modes := []string{protocol.ModeUserDevice, protocol.ModeUserDevice, protocol.ModeUser, protocol.ModeSession}
	seats, mode, ppu := int64(rng.IntN(4)), modes[rng.IntN(len(modes))], rng.IntN(3) > 0
	f := accountOn(t, b, setup{seats: seats, mode: mode, ppu: ppu})
	h := &modelHarness{t: t, ctx: f.ctx, b: b, rc: rc, keys: rdb.NewKeys(b.Config().Prefix), acct: f.acct,
		owner: f.owner, rng: rng, m: newSeatModel(seats, mode, ppu), kind: int(seed % 4),
		codes: map[string]string{}, fence: map[string]string{}, stale: map[string]string{}, joins: map[string]bool{}, seed: seed,
		prevUsed: -1, prevKeys: map[string]int{}}
	h.logf("account seats=%d mode=%s ppu=%v kind of seed %d", seats, mode, ppu, h.kind)
	if h.kind != 3 {
		long := int64(600)
		_, err := b.UpdateSettings(h.ctx, h.owner, broker.SettingsPatch{NoticeSec: &long})
		require.NoError(t, err)
	}
	h.m.users = append(h.m.users, &modelUser{id: f.owner.UserID, name: "owner", owner: true})
	for i := 1; i < 4; i++ {
		var max *int
		if r := rng.IntN(4); r < 3 {
			max = intp(r)
		}
		role := protocol.RoleMember
		if i == 1 && rng.IntN(2) == 0 {
			role = protocol.RoleAdmin
		}
		u, err := b.AddUser(h.ctx, h.owner, broker.UserSpec{Name: fmt.Sprintf("m%d", i), Role: role, MaxSeats: max})
		require.NoError(t, err)
		h.m.users = append(h.m.users, &modelUser{id: u.ID, name: u.Name, maxSeats: max, admin: role == protocol.RoleAdmin})
		h.logf("user %d %s max_seats=%s", i, role, maxString(max))
	}
	if bal := int64(rng.IntN(6)); bal > 0 {
		h.m.balance = f.topUp(bal)
	}
	h.logf("balance %d", h.m.balance)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("seed %d, the operations up to the failure:\n%s", seed, strings.Join(h.log, "\n"))
		}
	})
	h.check("setup")
	return h
}

func maxString(p *int) string {
	if p == nil {
		return "none"
	}
	return strconv.Itoa(*p)
}

func (h *modelHarness) logf(format string, args ...any) {
	h.log = append(h.log, fmt.Sprintf("%3d: ", h.n)+fmt.Sprintf(format, args...))
}

// codeOf is the wire code of an error ("ok" for none).
func codeOf(err error) string {
	if err == nil {
		return "ok"
	}
	d, _ := broker.ErrorDetail(err)
	return string(d.Code)
}

func orOK(code string) string {
	if code == "" {
		return "ok"
	}
	return code
}

// pick returns a session of the model, mostly one in one of the states
// given (any live one when none is given), else any (nil if none).
func (h *modelHarness) pick(states ...string) *modelSess {
	if len(h.m.order) == 0 {
		return nil
	}
	var live []string
	for _, id := range h.m.order {
		st := h.m.sess[id].state
		if len(states) == 0 && st != protocol.StateEnded || slices.Contains(states, st) {
			live = append(live, id)
		}
	}
	if len(live) > 0 && h.rng.IntN(5) > 0 {
		return h.m.sess[live[h.rng.IntN(len(live))]]
	}
	return h.m.sess[h.m.order[h.rng.IntN(len(h.m.order))]]
}

// by is mostly the session's own user, sometimes another one.
func (h *modelHarness) by(s *modelSess) int {
	if h.rng.IntN(6) == 0 {
		return h.rng.IntN(len(h.m.users))
	}
	return s.user
}

// sessionOutcome is what a grant's reply or a model session says.
func sessionOutcome(state, kind string) string { return "ok " + state + " " + kind }

func (h *modelHarness) modelOutcome(code string, s *modelSess) string {
	if code != "" {
		return code
	}
	return sessionOutcome(s.state, s.kind)
}

func (h *modelHarness) step() {
	h.n++
	var got, want, what string
	m := h.m
	switch r := h.rng.IntN(100); {
	case r < 4:
		// a heartbeat of the desktop client, or of a holder a resume
		// replaced
		s := h.pick()
		if s == nil {
			return
		}
		by := h.by(s)
		fence, fw := h.fence[s.id], "with its fence"
		if h.stale[s.id] != "" && h.rng.IntN(3) == 0 {
			fence, fw = h.stale[s.id], "stale"
		}
		what = fmt.Sprintf("renew %s by user %d %s", s.id, by, fw)
		res, err := h.b.Renew(h.ctx, h.acct, m.users[by].id, []broker.SessionRef{{ID: s.id, Fence: fence}})
		require.NoError(h.t, err)
		require.Len(h.t, res, 1)
		got = codeOf(res[0].Err)
		if res[0].Err == nil {
			got = sessionOutcome(res[0].Session.State, res[0].Session.Kind)
		}
		code := m.renew(s, by, fw == "stale")
		want = h.modelOutcome(code, s)
	case r < 26:
		u := h.rng.IntN(len(m.users))
		dev := fmt.Sprintf("d%d", h.rng.IntN(2))
		withCode := h.rng.IntN(3) == 0
		what = fmt.Sprintf("open user %d %s code=%v", u, dev, withCode)
		g, err := h.b.Open(h.ctx, broker.OpenRequest{Account: h.acct, UserID: m.users[u].id, DeviceID: dev, WithCode: withCode})
		got = codeOf(err)
		id := "(denied)"
		if err == nil {
			got, id = sessionOutcome(g.Session.State, g.Session.Kind), g.Session.ID
			h.codes[id], h.fence[id] = g.Session.Code, g.Fence
		}
		got += h.ownOffered(err)
		code, s := m.open(id, u, dev, withCode)
		want = h.modelOutcome(code, s) + h.modelOwn(code, u)
		what += " -> " + id
	case r < 34:
		s := h.pick(protocol.StateStandby)
		if s == nil || h.codes[s.id] == "" {
			return
		}
		what = "join " + s.id
		js, _, err := h.b.Join(h.ctx, h.codes[s.id], fmt.Sprintf("src-%d-%d", h.seed, h.n))
		got = codeOf(err)
		if err == nil {
			got = sessionOutcome(js.State, js.Kind)
		}
		code := m.join(s)
		if code == "" {
			h.joins[s.id] = true
		}
		want = h.modelOutcome(code, s)
	case r < 45:
		s := h.pick(protocol.StateActive)
		if s == nil {
			return
		}
		by := h.by(s)
		fence, fenceWhat := h.holder(s, by)
		what = fmt.Sprintf("pause %s by user %d %s", s.id, by, fenceWhat)
		ps, err := h.b.Pause(h.ctx, h.acct, m.users[by].id, s.id, fence)
		got = codeOf(err)
		if err == nil {
			got = sessionOutcome(ps.State, ps.Kind)
		}
		if fenceWhat == "stale" && by == s.user {
			want = m.staleHolder()
		} else {
			want = h.modelOutcome(m.pause(s, by), s)
		}
	case r < 56:
		s := h.pick(protocol.StatePaused)
		if s == nil {
			return
		}
		by := h.by(s)
		what = fmt.Sprintf("resume %s by user %d", s.id, by)
		g, err := h.b.Resume(h.ctx, h.acct, m.users[by].id, s.id)
		got = codeOf(err)
		if err == nil {
			got = sessionOutcome(g.Session.State, g.Session.Kind)
			h.stale[s.id], h.fence[s.id] = h.fence[s.id], g.Fence
		}
		got += h.ownOffered(err)
		code := m.resume(s, by)
		want = h.modelOutcome(code, s) + h.modelOwn(code, by)
	case r < 65:
		s := h.pick()
		if s == nil {
			return
		}
		by := h.by(s)
		if h.joins[s.id] && h.rng.IntN(4) == 0 {
			// the remote side, which the caller checked is in the session
			what = fmt.Sprintf("close %s by its remote side", s.id)
			cs, err := h.b.CloseSession(h.ctx, h.acct, "", "remote", s.id, "")
			got = codeOf(err)
			if err == nil {
				got = sessionOutcome(cs.State, cs.Kind)
			}
			want = h.modelOutcome(m.closeByRemote(s), s)
			break
		}
		fence, fenceWhat := h.holder(s, by)
		what = fmt.Sprintf("close %s by user %d %s", s.id, by, fenceWhat)
		cs, err := h.b.CloseSession(h.ctx, h.acct, m.users[by].id, m.users[by].name, s.id, fence)
		got = codeOf(err)
		if err == nil {
			got = sessionOutcome(cs.State, cs.Kind)
		}
		if fenceWhat == "stale" && by == s.user {
			want = m.staleHolder()
		} else {
			want = h.modelOutcome(m.closeBy(s, by), s)
		}
	case r < 73:
		// End Selected Sessions: one to three sessions, a repeat allowed
		var picked []*modelSess
		for range 1 + h.rng.IntN(3) {
			if s := h.pick(); s != nil {
				picked = append(picked, s)
			}
		}
		if len(picked) == 0 {
			return
		}
		by := 0
		if h.rng.IntN(3) == 0 {
			by = h.rng.IntN(len(m.users))
		}
		if m.users[by].blocked {
			by = 0
		}
		p, err := h.b.PrincipalFor(h.ctx, h.acct, m.users[by].id)
		require.NoError(h.t, err)
		ids := make([]string, len(picked))
		for i, s := range picked {
			ids[i] = s.id
		}
		what = fmt.Sprintf("end %s by user %d", strings.Join(ids, " "), by)
		res, err := h.b.EndSessions(h.ctx, p, ids)
		require.NoError(h.t, err)
		require.Len(h.t, res, len(ids))
		var gots, wants []string
		for _, r := range res {
			if r.OK {
				gots = append(gots, sessionOutcome(r.Session.State, r.Session.Kind))
			} else {
				gots = append(gots, string(r.Error.Code))
			}
		}
		// each session is checked as it was, and every answer shows its
		// session as the whole operation left it
		codes := make([]string, len(picked))
		for i, s := range picked {
			if j := slices.Index(ids, s.id); j < i {
				codes[i] = codes[j]
				continue
			}
			codes[i] = m.endBy(s, by)
		}
		for i, s := range picked {
			wants = append(wants, h.modelOutcome(codes[i], s))
		}
		got, want = strings.Join(gots, "; "), strings.Join(wants, "; ")
	case r < 78:
		u := h.rng.IntN(len(m.users))
		block := !m.users[u].blocked && h.rng.IntN(2) == 0 || h.rng.IntN(8) == 0
		by := 0 // the owner, or an admin
		if a := m.users[1]; a.admin && !a.blocked && h.rng.IntN(3) == 0 {
			by = 1
		}
		p, err := h.b.PrincipalFor(h.ctx, h.acct, m.users[by].id)
		require.NoError(h.t, err)
		what = fmt.Sprintf("block user %d by user %d: %v", u, by, block)
		_, err = h.b.BlockUser(h.ctx, p, m.users[u].id, block)
		got = codeOf(err)
		switch {
		case block && (m.users[u].owner || u == by):
			want = "invalid_request" // design.md
		case block:
			m.block(u)
			want = "ok"
		default:
			m.users[u].blocked = false
			want = "ok"
		}
	case r < 83:
		n := int64(h.rng.IntN(5))
		if h.rng.IntN(10) == 0 {
			n = -1
		}
		what = fmt.Sprintf("seats %d", n)
		_, err := h.b.UpdateSettings(h.ctx, h.owner, broker.SettingsPatch{Seats: &n})
		got, want = codeOf(err), "ok"
		if n < 0 {
			want = "invalid_request"
		} else {
			m.setSeats(n)
		}
	case r < 88:
		u := h.rng.IntN(len(m.users))
		patch := broker.UserPatch{ClearMaxSeats: true}
		var max *int
		if h.rng.IntN(4) > 0 {
			max = intp(h.rng.IntN(3))
			patch = broker.UserPatch{MaxSeats: max}
		}
		what = fmt.Sprintf("max_seats of user %d: %s", u, maxString(max))
		_, err := h.b.UpdateUser(h.ctx, h.owner, m.users[u].id, patch)
		got, want = codeOf(err), "ok"
		m.users[u].maxSeats = max
	case r < 91:
		n := int64(1 + h.rng.IntN(3))
		if h.rng.IntN(10) == 0 {
			n = 0
		}
		what = fmt.Sprintf("top up %d", n)
		_, err := h.b.TopUp(h.ctx, h.owner, n, "", "model")
		got, want = codeOf(err), "ok"
		if n <= 0 {
			want = "invalid_request"
		} else {
			m.balance += n
		}
	case r < 93:
		on := !m.ppu
		what = fmt.Sprintf("ppu %v", on)
		_, err := h.b.UpdateSettings(h.ctx, h.owner, broker.SettingsPatch{PPUEnabled: &on})
		got, want = codeOf(err), "ok"
		m.ppu = on
	case r < 95:
		on := !m.promote
		what = fmt.Sprintf("promote %v", on)
		_, err := h.b.UpdateSettings(h.ctx, h.owner, broker.SettingsPatch{Promote: &on})
		got, want = codeOf(err), "ok"
		m.setPromote(on)
	case r < 97:
		// the account's view and control defaults (control wider than
		// view is refused)
		pairs := [][2]string{{"domain", "domain"}, {"domain", "own"}, {"domain", "none"},
			{"own", "own"}, {"own", "none"}, {"none", "none"}, {"own", "domain"}}
		pair := pairs[h.rng.IntN(len(pairs))]
		what = "view " + pair[0] + " control " + pair[1]
		_, err := h.b.UpdateSettings(h.ctx, h.owner, broker.SettingsPatch{View: &pair[0], Control: &pair[1]})
		got, want = codeOf(err), "ok"
		if pair == [2]string{"own", "domain"} {
			want = "invalid_request"
		} else {
			m.view, m.control = pair[0], pair[1]
		}
	default:
		modes := []string{protocol.ModeUserDevice, protocol.ModeUser, protocol.ModeSession}
		mode := modes[h.rng.IntN(len(modes))]
		what = "mode " + mode
		_, err := h.b.UpdateSettings(h.ctx, h.owner, broker.SettingsPatch{Mode: &mode})
		got, want = codeOf(err), orOK(m.setMode(mode))
	}
	h.logf("%s: broker %q, model %q (balance %d, used %d of %d)", what, got, want, m.balance, m.used, m.seats)
	if h.seen != nil {
		h.seen[outcomeClass(what, got)]++
	}
	if got != want {
		h.t.Errorf("seed %d step %d: %s: the broker answered %q, the model %q", h.seed, h.n, what, got, want)
		return
	}
	h.runOut()
	h.check(what)
}

// holder picks the fencing token a pause or close comes with: none (the
// user on its own authority, the REST API), the session's current one (its
// desktop client), or one a resume replaced (a stale holder).
func (h *modelHarness) holder(s *modelSess, by int) (string, string) {
	if by != s.user {
		return "", "without a fence"
	}
	switch r := h.rng.IntN(5); {
	case r < 2:
		return h.fence[s.id], "with its fence"
	case r == 2 && h.stale[s.id] != "":
		return h.stale[s.id], "stale"
	}
	return "", "without a fence"
}

// ownOffered is the refusal's offer of the user's own sessions to end.
func (h *modelHarness) ownOffered(err error) string {
	var de *broker.DeniedError
	if !errors.As(err, &de) {
		return ""
	}
	var ids []string
	for _, s := range de.Own {
		ids = append(ids, s.ID)
	}
	sort.Strings(ids)
	return " offers [" + strings.Join(ids, " ") + "]"
}

// modelOwn is what a refusal of the seat rules offers by the model: the
// user's own seat-holding sessions (SPEC, rule 5) that its control setting
// lets it end.
func (h *modelHarness) modelOwn(code string, u int) string {
	switch code {
	case "user_limit", "account_limit", "ppu_exhausted":
	case "user_blocked":
		return " offers []" // a blocked user may end nothing (design.md)
	default:
		return ""
	}
	var ids []string
	for _, id := range h.m.order {
		if s := h.m.sess[id]; s.user == u && holds(s.state) && h.m.canControl(u, s) {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return " offers [" + strings.Join(ids, " ") + "]"
}

// outcomeClass is an operation and its outcome without ids and numbers.
func outcomeClass(what, got string) string {
	var w []string
	for _, f := range strings.Fields(what) {
		if f == "->" {
			break
		}
		if len(f) == 36 || f[0] >= '0' && f[0] <= '9' || strings.HasPrefix(f, "d") && len(f) == 2 {
			continue
		}
		w = append(w, f)
	}
	if i := strings.Index(got, " offers"); i >= 0 {
		got = got[:i]
	}
	return strings.Join(w, " ") + ": " + got
}
