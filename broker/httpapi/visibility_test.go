package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/seatbroker/seatbroker/broker"
	"github.com/seatbroker/seatbroker/broker/protocol"
	"github.com/seatbroker/seatbroker/broker/server"
)

// This file holds SPEC.md invariant 6 ("No user sees or acts on a session
// that the rules above hide from it") to every way the REST API and the
// page's event stream show or act on a session. The expected answers come
// from the small model below, written from SPEC.md ("Who may see and do
// what", "Pause and resume", "Ending sessions") and from the rules
// docs/design.md chose where SPEC is silent, not from broker/policy.go.

// visPairs are the legal (view, control) pairs: control is never wider
// than view.
var visPairs = [][2]string{
	{"none", "none"}, {"own", "none"}, {"own", "own"},
	{"domain", "none"}, {"domain", "own"}, {"domain", "domain"},
}

var visStates = []string{protocol.StateStandby, protocol.StateActive, protocol.StatePaused,
	protocol.StateTerminating, protocol.StateEnded}

// visActor is who calls, as the model knows it.
type visActor struct {
	name string
	acct string
	uid  string
	role string
	// view and control are what the test set for a member (by the
	// account's default or by its override); owner and admins have
	// domain for both whatever is set (SPEC).
	view, control string
	// byDefault: the member's pair is the account's default (it has no
	// override of its own)
	byDefault bool
	// refused is the code every call answers when the credentials do not
	// work ("" when they do): unauthorized for none, an expired or a
	// revoked token; user_blocked for a blocked user's token.
	refused protocol.Code
}

func visRank(s string) int {
	switch s {
	case "own":
		return 1
	case "domain":
		return 2
	}
	return 0
}

func (a visActor) scopes() (view, control string) {
	if a.role == protocol.RoleOwner || a.role == protocol.RoleAdmin {
		return "domain", "domain"
	}
	return a.view, a.control
}

// sees: own sessions with view own or domain; other users' sessions of the
// account with view domain, except paused ones; nothing of another
// account.
func (a visActor) sees(acct, owner, state string) bool {
	if acct != a.acct {
		return false
	}
	v, _ := a.scopes()
	if owner == a.uid {
		return visRank(v) >= 1
	}
	return state != protocol.StatePaused && visRank(v) == 2
}

// controls: control own ends one's own sessions, domain any the user can
// see.
func (a visActor) controls(acct, owner, state string) bool {
	if !a.sees(acct, owner, state) {
		return false
	}
	_, c := a.scopes()
	if owner == a.uid {
		return visRank(c) >= 1
	}
	return visRank(c) == 2
}

// visWant is an expected (or received) answer of one call on one session.
type visWant struct {
	status int
	code   protocol.Code // "" for success
	state  string        // the session's state after the call
}

func (w visWant) String() string {
	if w.code == "" {
		return fmt.Sprintf("%d -> %s", w.status, w.state)
	}
	return fmt.Sprintf("%d %s -> %s", w.status, w.code, w.state)
}

func visFail(status int, code protocol.Code, state string) visWant {
	return visWant{status: status, code: code, state: state}
}

func (a visActor) refusal(state string) (visWant, bool) {
	switch a.refused {
	case "":
		return visWant{}, false
	case protocol.CodeUserBlocked:
		return visFail(http.StatusForbidden, a.refused, state), true
	}
	return visFail(http.StatusUnauthorized, a.refused, state), true
}

// wantGet is GET /sessions/{id} and GET /sessions/{id}/ledger.
func (a visActor) wantGet(acct, owner, state string) visWant {
	if w, ok := a.refusal(state); ok {
		return w
	}
	if !a.sees(acct, owner, state) {
		return visFail(http.StatusNotFound, protocol.CodeNotFound, state)
	}
	return visWant{status: http.StatusOK, state: state}
}

// wantEnd is End Selected Sessions of one session: what the caller may not
// see is not found, what it may see but not control forbidden (the
// request itself answers 200 with the result). Active sessions get the
// notice, standby and paused ones end at once, ending again changes
// nothing.
func (a visActor) wantEnd(acct, owner, state string) visWant {
	if w, ok := a.refusal(state); ok {
		return w
	}
	switch {
	case !a.sees(acct, owner, state):
		return visFail(http.StatusOK, protocol.CodeNotFound, state)
	case !a.controls(acct, owner, state):
		return visFail(http.StatusOK, protocol.CodeForbidden, state)
	}
	next := state
	switch state {
	case protocol.StateActive:
		next = protocol.StateTerminating
	case protocol.StateStandby, protocol.StatePaused:
		next = protocol.StateEnded
	}
	return visWant{status: http.StatusOK, state: next}
}

// wantPauseResume: only the session's own user pauses (active) or resumes
// (paused) it, whatever its view and control (docs/design.md: governed by
// ownership alone); another user's session it may see is forbidden, one
// it may not see not found.
func (a visActor) wantPauseResume(acct, owner, state, from, to string) visWant {
	if w, ok := a.refusal(state); ok {
		return w
	}
	switch {
	case acct == a.acct && owner == a.uid && state == from:
		return visWant{status: http.StatusOK, state: to}
	case acct == a.acct && owner == a.uid:
		return visFail(http.StatusBadRequest, protocol.CodeInvalidRequest, state)
	case a.sees(acct, owner, state):
		return visFail(http.StatusForbidden, protocol.CodeForbidden, state)
	}
	return visFail(http.StatusNotFound, protocol.CodeNotFound, state)
}

// holdsSeat: standby, active and terminating sessions hold a seat; paused
// and ended ones do not (SPEC, Session states).
func holdsSeat(state string) bool {
	return state == protocol.StateStandby || state == protocol.StateActive || state == protocol.StateTerminating
}

// visSess is a session the test made.
type visSess struct {
	acct   *account
	owner  string
	device string
}

// visWorld is one node, two accounts (A, and B for "another account")
// and every session the test made, with a shared session per (user,
// state) for the calls that change nothing.
type visWorld struct {
	t      *testing.T
	e      *env
	ctx    context.Context
	a, b   *account
	reg    map[string]visSess
	fix    map[string]string // acct/user/state -> session id
	n      int
	errors int
}

func (w *visWorld) disagree(cell, format string, args ...any) {
	w.t.Helper()
	w.errors++
	w.t.Errorf("DISAGREES %s: %s", cell, fmt.Sprintf(format, args...))
}

// mk makes a session of uid in state, directly through the broker.
func (w *visWorld) mk(a *account, uid, state string) string {
	w.t.Helper()
	w.n++
	dev := fmt.Sprintf("d%d", w.n%40)
	g, err := w.e.b.Open(w.ctx, broker.OpenRequest{Account: a.id, UserID: uid, DeviceID: dev,
		WithCode: state == protocol.StateStandby})
	require.NoError(w.t, err)
	id := g.Session.ID
	w.reg[id] = visSess{acct: a, owner: uid, device: dev}
	switch state {
	case protocol.StatePaused:
		_, err = w.e.b.Pause(w.ctx, a.id, uid, id, g.Fence)
	case protocol.StateTerminating:
		_, err = w.e.b.EndSessions(w.ctx, a.op, []string{id})
	case protocol.StateEnded:
		_, err = w.e.b.CloseSession(w.ctx, a.id, uid, "matrix", id, g.Fence)
	}
	require.NoError(w.t, err)
	require.Equal(w.t, state, w.state(id), "made in its state")
	return id
}

// target is the shared session of (uid, state), or a new one when the
// call is to change it.
func (w *visWorld) target(a *account, uid, state string, fresh bool) string {
	w.t.Helper()
	if fresh {
		return w.mk(a, uid, state)
	}
	k := a.id + "/" + uid + "/" + state
	if id, ok := w.fix[k]; ok {
		return id
	}
	id := w.mk(a, uid, state)
	w.fix[k] = id
	return id
}

// unshare drops a shared session that a call changed (a disagreement):
// the next cell gets a new one.
func (w *visWorld) unshare(a *account, uid, state, id string) {
	k := a.id + "/" + uid + "/" + state
	if w.fix[k] == id {
		delete(w.fix, k)
	}
}

// state is a session's real state, as its own desktop client reads it.
func (w *visWorld) state(id string) string {
	w.t.Helper()
	s := w.reg[id]
	got, err := w.e.b.OwnSession(w.ctx, s.acct.id, s.owner, id)
	require.NoError(w.t, err)
	return got.State
}

// truth is every session the test made in acct with its real state.
func (w *visWorld) truth(acct string) map[string]string {
	w.t.Helper()
	out := map[string]string{}
	for id, s := range w.sessions(acct) {
		out[id] = s.State
	}
	return out
}

// sessions is every session the test made in acct as it really is, as
// its own desktop client reads it.
func (w *visWorld) sessions(acct string) map[string]protocol.Session {
	w.t.Helper()
	out := map[string]protocol.Session{}
	for id, s := range w.reg {
		if s.acct.id == acct {
			got, err := w.e.b.OwnSession(w.ctx, s.acct.id, s.owner, id)
			require.NoError(w.t, err)
			out[id] = got
		}
	}
	return out
}

// seatKeys counts the distinct (user, device) seat keys of seat-holding
// sessions of acct, of user uid ("" for all).
func (w *visWorld) seatKeys(truth map[string]string, uid string) int {
	keys := map[string]bool{}
	for id, st := range truth {
		s := w.reg[id]
		if holdsSeat(st) && (uid == "" || s.owner == uid) {
			keys[s.owner+"/"+s.device] = true
		}
	}
	return len(keys)
}

// counts are the overview's counts of the sessions: prepaid seat keys
// held, seat keys on PPU, and sessions on PPU, all of seat-holding
// sessions only (a paused session holds no seat and is not billed).
func (w *visWorld) counts(ss map[string]protocol.Session) (prepaid, ppuKeys, ppuSessions int64) {
	keys := map[string]string{}
	for id, s := range ss {
		if !holdsSeat(s.State) {
			continue
		}
		keys[w.reg[id].owner+"/"+w.reg[id].device] = s.Kind
		if s.Kind == protocol.KindPPU {
			ppuSessions++
		}
	}
	for _, kind := range keys {
		if kind == protocol.KindPPU {
			ppuKeys++
		} else {
			prepaid++
		}
	}
	return prepaid, ppuKeys, ppuSessions
}

// answer is what a refusal or success said, in the model's terms.
func answerOf(t *testing.T, r reply, state string) visWant {
	t.Helper()
	w := visWant{status: r.status, state: state}
	if r.status >= 300 {
		w.code = r.errCode(t)
	}
	return w
}

// TestNoUserSeesOrActsOnASessionTheRulesHide checks every cell of actor x
// session x way of seeing or acting against the model. Actors: the owner
// and an admin (each with a narrower override, which must not narrow
// them), a member with each legal (view, control) pair set by the
// account's default and again by its own override (under a different
// default: the override wins), a blocked user, a user of another account,
// no credentials, an expired and a revoked token. Sessions: the actor's
// own, another member's, the owner's, in every state, another account's,
// and unknown and malformed ids (which must answer exactly as another
// account's). Ways: GET /sessions (every state, the default list and per
// user), GET /sessions/{id} and its ledger, End Selected Sessions, pause,
// resume, the overview's counts, users' seats_held, a denial's own
// sessions, and the events stream (no event about a session the viewer
// may not see; the last event about each session that changed is its
// state as the viewer may see it).
func TestNoUserSeesOrActsOnASessionTheRulesHide(t *testing.T) {
	t.Parallel()
	// no session made here heartbeats: no lease may run out while the
	// test runs, on a slow machine too
	e := newEnvWith(t, server.Options{}, func(c *broker.Config) { c.Lease = time.Hour })
	ctx := context.Background()
	w := &visWorld{t: t, e: e, ctx: ctx, reg: map[string]visSess{}, fix: map[string]string{}}
	// A: 20 licenses and PPU, so that its sessions run on both, and its
	// counts show both
	w.a, w.b = e.account(20, true), e.account(100000, false)
	_, err := e.b.TopUp(ctx, w.a.op, 1000000, "", "matrix")
	require.NoError(t, err)
	notice := int64(600) // no terminating session ends while the test runs
	for _, acct := range []*account{w.a, w.b} {
		_, err = e.b.UpdateSettings(ctx, acct.op, broker.SettingsPatch{NoticeSec: &notice})
		require.NoError(t, err)
	}
	a := w.a
	setOverride := func(tok, uid, view, control string) {
		e.mustDo(http.MethodPatch, "/api/v1/users/"+uid, tok, map[string]string{"view": view, "control": control}, nil)
	}
	// owner and admins always have domain for both: a narrow override on
	// them must change nothing
	setOverride(a.token, a.owner.ID, "none", "none")
	adm := a.user("adm", protocol.RoleAdmin)
	setOverride(a.token, adm.ID, "none", "none")
	q := a.user("q", protocol.RoleMember) // "another member"
	def := a.user("def", protocol.RoleMember)
	over := make([]protocol.User, len(visPairs))
	for i, p := range visPairs {
		over[i] = a.user(fmt.Sprintf("over%d", i), protocol.RoleMember)
		setOverride(a.token, over[i].ID, p[0], p[1])
	}
	blk := a.user("blk", protocol.RoleMember)
	blkTok := e.signIn(a.id, "blk")
	w.mk(a, blk.ID, protocol.StateActive)
	e.mustDo(http.MethodPost, "/api/v1/users/"+blk.ID+"/block", a.token, nil, nil)
	rev := a.user("rev", protocol.RoleMember)
	revTok := e.signIn(a.id, "rev")
	e.mustDo(http.MethodPost, "/api/v1/auth/signout", revTok, nil, nil)
	exp := a.user("exp", protocol.RoleMember)
	expP, err := e.b.PrincipalFor(ctx, a.id, exp.ID)
	require.NoError(t, err)
	expTok, err := e.b.IssueToken(ctx, expP, time.Second, "short")
	require.NoError(t, err)

	tokens := map[string]string{a.owner.ID: a.token, adm.ID: e.signIn(a.id, "adm"), def.ID: e.signIn(a.id, "def"),
		w.b.owner.ID: w.b.token, blk.ID: blkTok, rev.ID: revTok}
	for i, u := range over {
		tokens[u.ID] = e.signIn(a.id, fmt.Sprintf("over%d", i))
	}

	// watcher follows the account's default and only watches: its stream
	// stays open while the default changes under it
	watcher := a.user("watcher", protocol.RoleMember)
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	wstream := e.openStream(wctx, "Authorization", "Bearer "+e.signIn(a.id, "watcher"))
	next(t, wstream, 5*time.Second, func(ev sse) bool { return ev.name == "overview" })
	var wevents []sse // guarded by the channels: read after wdone
	wresync := make(chan struct{}, len(visPairs)+1)
	wdone := make(chan struct{})
	go func() {
		defer close(wdone)
		for ev := range wstream {
			wevents = append(wevents, ev)
			if ev.name == "resync" {
				wresync <- struct{}{}
			}
		}
	}()

	cells := 0
	for k, pair := range visPairs {
		// the account's default is pair k: def follows it, and the member
		// whose override is pair k+1 must keep its own
		e.mustDo(http.MethodPatch, "/api/v1/settings", a.token, map[string]string{"view": pair[0], "control": pair[1]}, nil)
		select {
		case <-wresync: // the watcher's stream took the new default
		case <-time.After(5 * time.Second):
			t.Fatalf("no resync for the watcher when the default became %v", pair)
		}
		o := (k + 1) % len(visPairs)
		actors := []visActor{
			{name: fmt.Sprintf("member by default %s/%s", pair[0], pair[1]), acct: a.id, uid: def.ID,
				role: protocol.RoleMember, view: pair[0], control: pair[1], byDefault: true},
			{name: fmt.Sprintf("member by override %s/%s under default %s/%s", visPairs[o][0], visPairs[o][1], pair[0], pair[1]),
				acct: a.id, uid: over[o].ID, role: protocol.RoleMember, view: visPairs[o][0], control: visPairs[o][1]},
		}
		if k == 0 {
			actors = append(actors,
				visActor{name: "owner", acct: a.id, uid: a.owner.ID, role: protocol.RoleOwner},
				visActor{name: "admin", acct: a.id, uid: adm.ID, role: protocol.RoleAdmin},
				visActor{name: "user of another account", acct: w.b.id, uid: w.b.owner.ID, role: protocol.RoleOwner},
				visActor{name: "blocked user", acct: a.id, uid: blk.ID, role: protocol.RoleMember, refused: protocol.CodeUserBlocked},
				visActor{name: "revoked token", acct: a.id, uid: rev.ID, role: protocol.RoleMember, refused: protocol.CodeUnauthorized},
				visActor{name: "expired token", acct: a.id, uid: exp.ID, role: protocol.RoleMember, refused: protocol.CodeUnauthorized},
				visActor{name: "no credentials", acct: a.id, uid: "", role: protocol.RoleMember, refused: protocol.CodeUnauthorized},
			)
			tokens[exp.ID] = expTok.Token
		}
		for _, act := range actors {
			if act.uid == exp.ID {
				require.Eventually(t, func() bool {
					_, err := e.b.Authenticate(ctx, expTok.Token, broker.TokenClient)
					return err != nil
				}, 5*time.Second, 10*time.Millisecond, "the short token expires")
			}
			cells += w.runActor(act, tokens[act.uid], a, q.ID)
		}
	}
	wcancel()
	<-wdone
	cells += w.watcherCells(watcher.ID, a.id, wevents)
	prepaid, ppuKeys, ppuSessions := w.counts(w.sessions(a.id))
	t.Logf("visibility matrix: %d cells, %d disagreements, %d sessions; A ends with %d prepaid keys, %d PPU keys, %d PPU sessions",
		cells, w.errors, len(w.reg), prepaid, ppuKeys, ppuSessions)
	require.Positive(t, ppuSessions, "the counts were checked with sessions on PPU")
}

// runActor checks every cell of one actor and returns how many.
func (w *visWorld) runActor(act visActor, tok string, a *account, qID string) int {
	t, e := w.t, w.e
	t.Helper()
	cells := 0
	var stream *visStream
	if act.refused == "" {
		stream = w.openStream(tok)
		defer func() { stream.cancel(); <-stream.done }()
	}
	touched := map[string]bool{}

	type tgt struct {
		label string
		acct  *account
		uid   string
	}
	targets := []tgt{{"another member's", a, qID}, {"the owner's", a, a.owner.ID}, {"another account's", w.b, w.b.owner.ID}}
	if act.refused == "" && act.uid != a.owner.ID && act.uid != w.b.owner.ID {
		targets = append([]tgt{{"own", a, act.uid}}, targets...)
	}
	for _, tg := range targets {
		if tg.uid == act.uid {
			tg.label = "own"
		}
		for _, st := range visStates {
			cell := fmt.Sprintf("%s / %s %s session", act.name, tg.label, st)
			cells += w.readCells(act, tok, cell, tg.acct, tg.uid, st)
			for _, op := range []string{"end", "pause", "resume"} {
				var want visWant
				switch op {
				case "end":
					want = act.wantEnd(tg.acct.id, tg.uid, st)
				case "pause":
					want = act.wantPauseResume(tg.acct.id, tg.uid, st, protocol.StateActive, protocol.StatePaused)
				case "resume":
					want = act.wantPauseResume(tg.acct.id, tg.uid, st, protocol.StatePaused, protocol.StateActive)
				}
				changes := want.state != st
				id := w.target(tg.acct, tg.uid, st, changes)
				if changes {
					touched[id] = true
				}
				got := w.act(op, tok, id, st)
				cells++
				if got != want {
					w.disagree(cell+" / "+op, "want %v, got %v", want, got)
				}
				if got.state != st {
					touched[id] = true
					w.unshare(tg.acct, tg.uid, st, id)
				}
			}
		}
	}
	cells += w.unknownCells(act, tok)
	cells += w.listCells(act, tok)
	cells += w.countCells(act, tok)
	if stream != nil {
		cells += w.streamCells(act, tok, stream, touched)
	} else {
		r := e.request(http.MethodGet, "/api/v1/events", tok, nil)
		want, _ := act.refusal("")
		if got := answerOf(t, r, ""); got != want {
			w.disagree(act.name+" / events", "want %v, got %v", want, got)
		}
		cells++
	}
	return cells
}

// readCells: GET /sessions/{id} and its ledger.
func (w *visWorld) readCells(act visActor, tok, cell string, a *account, uid, st string) int {
	id := w.target(a, uid, st, false)
	want := act.wantGet(a.id, uid, st)
	for _, path := range []string{"/api/v1/sessions/" + id, "/api/v1/sessions/" + id + "/ledger"} {
		r := w.e.request(http.MethodGet, path, tok, nil)
		got := answerOf(w.t, r, w.state(id))
		if got != want {
			w.disagree(cell+" / GET "+strings.Replace(path, id, "{id}", 1), "want %v, got %v: %s", want, got, r.body)
			continue
		}
		if r.status == http.StatusOK && !strings.HasSuffix(path, "/ledger") {
			var s protocol.Session
			require.NoError(w.t, json.Unmarshal(r.body, &s))
			if s.State != st || s.CanControl != act.controls(a.id, uid, st) {
				w.disagree(cell+" / GET", "state %s can_control %v, want %s %v", s.State, s.CanControl, st, act.controls(a.id, uid, st))
			}
		}
	}
	return 2
}

// act runs one changing call on a session and says what came of it.
func (w *visWorld) act(op, tok, id, before string) visWant {
	var r reply
	if op == "end" {
		r = w.e.request(http.MethodPost, "/api/v1/sessions/end", tok, map[string][]string{"session_ids": {id}})
	} else {
		r = w.e.request(http.MethodPost, "/api/v1/sessions/"+id+"/"+op, tok, nil)
	}
	got := answerOf(w.t, r, "")
	if _, ok := w.reg[id]; ok {
		got.state = w.state(id)
	} else {
		got.state = before
	}
	if op == "end" && r.status == http.StatusOK {
		var out struct{ Results []protocol.EndResult }
		require.NoError(w.t, json.Unmarshal(r.body, &out))
		require.Len(w.t, out.Results, 1)
		if res := out.Results[0]; !res.OK {
			require.NotNil(w.t, res.Error)
			got.code = res.Error.Code
		}
	}
	return got
}

// unknownCells: an unknown id and a malformed one answer every call
// exactly as another account's session does (status, code and message),
// so nobody can probe another account's ids.
func (w *visWorld) unknownCells(act visActor, tok string) int {
	foreign := w.target(w.b, w.b.owner.ID, protocol.StateActive, false)
	if act.acct == w.b.id {
		foreign = w.target(w.a, w.a.owner.ID, protocol.StateActive, false)
	}
	cells := 0
	probe := func(id string) []string {
		var out []string
		for _, c := range []struct{ method, path string }{
			{http.MethodGet, "/api/v1/sessions/" + id},
			{http.MethodGet, "/api/v1/sessions/" + id + "/ledger"},
			{http.MethodPost, "/api/v1/sessions/" + id + "/pause"},
			{http.MethodPost, "/api/v1/sessions/" + id + "/resume"},
		} {
			r := w.e.request(c.method, c.path, tok, nil)
			out = append(out, fmt.Sprintf("%d %s", r.status, r.body))
		}
		r := w.e.request(http.MethodPost, "/api/v1/sessions/end", tok, map[string][]string{"session_ids": {id}})
		out = append(out, fmt.Sprintf("%d %s", r.status, strings.ReplaceAll(string(r.body), id, "{id}")))
		return out
	}
	want := probe(foreign)
	for _, id := range []string{uuid.NewString(), "not-a-session"} {
		got := probe(id)
		for i := range want {
			cells++
			if got[i] != want[i] {
				w.disagree(fmt.Sprintf("%s / unknown id %q, call %d", act.name, id, i), "answers %s, another account's id %s", got[i], want[i])
			}
		}
	}
	return cells
}

// listCells: the lists show exactly the sessions the model lets the actor
// see, each with can_control as the model says, and count only those.
func (w *visWorld) listCells(act visActor, tok string) int {
	truth := w.truth(act.acct)
	cells := 0
	check := func(query string, keep func(id, st string) bool) {
		cells++
		r := w.e.request(http.MethodGet, "/api/v1/sessions"+query, tok, nil)
		if want, ok := act.refusal(""); ok {
			if got := answerOf(w.t, r, ""); got != want {
				w.disagree(act.name+" / GET /sessions"+query, "want %v, got %v", want, got)
			}
			return
		}
		var list struct {
			Sessions []protocol.Session
			Total    int
		}
		require.Equal(w.t, http.StatusOK, r.status, "%s", r.body)
		require.NoError(w.t, json.Unmarshal(r.body, &list))
		var want, got []string
		for id, st := range truth {
			if keep(id, st) && act.sees(act.acct, w.reg[id].owner, st) {
				want = append(want, id+" "+st+fmt.Sprint(act.controls(act.acct, w.reg[id].owner, st)))
			}
		}
		for _, s := range list.Sessions {
			got = append(got, s.ID+" "+s.State+fmt.Sprint(s.CanControl))
		}
		sort.Strings(want)
		sort.Strings(got)
		if fmt.Sprint(want) != fmt.Sprint(got) || list.Total != len(want) {
			w.disagree(act.name+" / GET /sessions"+query, "want %d %v, got total %d %v", len(want), want, list.Total, got)
		}
	}
	check("?state=standby,active,paused,terminating,ended&limit=1000", func(string, string) bool { return true })
	check("?limit=1000", func(_, st string) bool { return st != protocol.StateEnded })
	for _, uid := range []string{act.uid, w.a.owner.ID} {
		check("?limit=1000&state=standby,active,paused,terminating,ended&user_id="+uid,
			func(id, _ string) bool { return w.reg[id].owner == uid })
	}
	return cells
}

// countCells: the overview's counts, the users' seats_held and a denial's
// own sessions count and show no session that holds no seat (a paused
// one) and nobody else's.
func (w *visWorld) countCells(act visActor, tok string) int {
	t, e := w.t, w.e
	cells := 3
	r := e.request(http.MethodGet, "/api/v1/overview", tok, nil)
	if want, ok := act.refusal(""); ok {
		if got := answerOf(t, r, ""); got != want {
			w.disagree(act.name+" / GET /overview", "want %v, got %v", want, got)
		}
		r := e.request(http.MethodPost, "/api/v1/codes", tok, map[string]string{"device_id": "deny"})
		if got := answerOf(t, r, ""); got != want {
			w.disagree(act.name+" / POST /codes", "want %v, got %v", want, got)
		}
		return 2
	}
	ss := w.sessions(act.acct)
	truth := w.truth(act.acct)
	var ov protocol.Overview
	require.Equal(t, http.StatusOK, r.status)
	require.NoError(t, json.Unmarshal(r.body, &ov))
	prepaid, ppuKeys, ppuSessions := w.counts(ss)
	if got, want := fmt.Sprint(ov.Account, ov.InUse, ov.PPUKeys, ov.PPUSessions), fmt.Sprint(act.acct, prepaid, ppuKeys, ppuSessions); got != want {
		w.disagree(act.name+" / GET /overview", "account, in_use, ppu_keys, ppu_sessions %s, want %s", got, want)
	}
	var me protocol.User
	e.mustDo(http.MethodGet, "/api/v1/users/"+act.uid, tok, nil, &me)
	if me.SeatsHeld != w.seatKeys(truth, act.uid) {
		w.disagree(act.name+" / GET /users/{self}", "seats_held %d, want %d", me.SeatsHeld, w.seatKeys(truth, act.uid))
	}
	if act.role != protocol.RoleMember {
		cells++
		var us struct{ Users []protocol.User }
		e.mustDo(http.MethodGet, "/api/v1/users", tok, nil, &us)
		for _, u := range us.Users {
			if u.SeatsHeld != w.seatKeys(truth, u.ID) {
				w.disagree(act.name+" / GET /users", "%s seats_held %d, want %d", u.Name, u.SeatsHeld, w.seatKeys(truth, u.ID))
			}
		}
	}
	// a denial (max_seats 0) lists the user's own seat-holding sessions
	// that it may end: none without control
	owner := w.a
	if act.acct == w.b.id {
		owner = w.b
	}
	e.mustDo(http.MethodPatch, "/api/v1/users/"+act.uid, owner.token, map[string]any{"max_seats": 0}, nil)
	r = e.request(http.MethodPost, "/api/v1/codes", tok, map[string]string{"device_id": "deny"})
	e.mustDo(http.MethodPatch, "/api/v1/users/"+act.uid, owner.token, map[string]any{"max_seats": nil}, nil)
	if r.status != http.StatusConflict {
		w.disagree(act.name+" / POST /codes at max_seats 0", "status %d, want 409: %s", r.status, r.body)
		return cells
	}
	var eb protocol.ErrorBody
	require.NoError(t, json.Unmarshal(r.body, &eb))
	var want, got []string
	for id, st := range truth {
		if w.reg[id].owner == act.uid && holdsSeat(st) && act.controls(act.acct, act.uid, st) {
			want = append(want, id)
		}
	}
	for _, s := range eb.Error.Own {
		got = append(got, s.ID)
	}
	sort.Strings(want)
	sort.Strings(got)
	if fmt.Sprint(want) != fmt.Sprint(got) || eb.Error.Code != protocol.CodeUserLimit {
		w.disagree(act.name+" / POST /codes at max_seats 0", "%s own_sessions %v, want user_limit %v", eb.Error.Code, got, want)
	}
	return cells
}

// visStream is an actor's events stream, read from before its cells, and
// drained as they run (a stream not read would fall behind, and be sent a
// resync in place of the events it missed).
type visStream struct {
	cancel func()
	more   chan struct{} // a token after each new event
	done   chan struct{} // the stream ended
	mu     sync.Mutex
	events []sse // guarded by mu
}

func (w *visWorld) openStream(tok string) *visStream {
	ctx, cancel := context.WithCancel(w.ctx)
	ch := w.e.openStream(ctx, "Authorization", "Bearer "+tok)
	// the first overview: the stream is watching the account
	next(w.t, ch, 5*time.Second, func(ev sse) bool { return ev.name == "overview" })
	s := &visStream{cancel: cancel, more: make(chan struct{}, 1), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for ev := range ch {
			s.mu.Lock()
			s.events = append(s.events, ev)
			s.mu.Unlock()
			select {
			case s.more <- struct{}{}:
			default:
			}
		}
	}()
	return s
}

// until returns the events up to the first that match accepts.
func (s *visStream) until(t *testing.T, match func(sse) bool) []sse {
	t.Helper()
	timeout := time.After(5 * time.Second)
	seen := 0
	for {
		s.mu.Lock()
		evs := s.events
		s.mu.Unlock()
		for ; seen < len(evs); seen++ {
			if match(evs[seen]) {
				return evs[:seen+1]
			}
		}
		select {
		case <-s.more:
		case <-s.done:
			t.Fatal("the stream ended")
		case <-timeout:
			t.Fatal("no marker on the stream within 5s")
		}
	}
}

// streamCells: after a marker the actor is sure to get (a new session of
// its own, or a resync when its permissions change), every event that
// came is checked: none about a session it may not see (a session_hidden
// only for another user's session it could see before it paused), each
// with can_control as the model says; and the last event about each
// session that changed is that session as the actor may see it now.
func (w *visWorld) streamCells(act visActor, tok string, s *visStream, touched map[string]bool) int {
	t, e := w.t, w.e
	var events []sse
	view, _ := act.scopes()
	acct := w.a
	if act.acct == w.b.id {
		acct = w.b
	}
	if visRank(view) >= 1 {
		marker := w.mk(acct, act.uid, protocol.StateActive)
		touched[marker] = true
		events = s.until(t, sessionEvent(marker, protocol.StateActive))
		for _, ev := range events {
			require.NotEqual(t, "resync", ev.name, "%s: the stream fell behind and lost events", act.name)
		}
	} else {
		// a member with view none: a change of its permissions
		e.mustDo(http.MethodPatch, "/api/v1/users/"+act.uid, acct.token, map[string]string{"view": "own", "control": "none"}, nil)
		events = s.until(t, func(ev sse) bool { return ev.name == "resync" })
		var restore map[string]string
		if act.byDefault {
			restore = map[string]string{"view": "", "control": ""}
		} else {
			restore = map[string]string{"view": act.view, "control": act.control}
		}
		s.cancel()
		e.mustDo(http.MethodPatch, "/api/v1/users/"+act.uid, acct.token, restore, nil)
	}
	cells := 0
	last := map[string]sse{}
	for _, ev := range events {
		switch ev.name {
		case "session":
			cells++
			var ss protocol.Session
			require.NoError(t, json.Unmarshal([]byte(ev.data), &ss))
			rs, ok := w.reg[ss.ID]
			if !ok || !act.sees(rs.acct.id, rs.owner, ss.State) {
				w.disagree(act.name+" / events", "a session event it may not see: %s", ev.data)
				continue
			}
			if ss.CanControl != act.controls(rs.acct.id, rs.owner, ss.State) {
				w.disagree(act.name+" / events", "can_control %v: %s", ss.CanControl, ev.data)
			}
			last[ss.ID] = ev
		case "session_hidden":
			cells++
			var h struct{ ID string }
			require.NoError(t, json.Unmarshal([]byte(ev.data), &h))
			rs, ok := w.reg[h.ID]
			if !ok || rs.acct.id != act.acct || rs.owner == act.uid || view != "domain" {
				w.disagree(act.name+" / events", "session_hidden about a session it never could see: %s", ev.data)
				continue
			}
			last[h.ID] = ev
		}
	}
	for id := range touched {
		rs := w.reg[id]
		if rs.acct.id != act.acct {
			continue
		}
		cells++
		st := w.state(id)
		ev, got := last[id]
		switch {
		case act.sees(rs.acct.id, rs.owner, st):
			if !got || !sessionEvent(id, st)(ev) {
				w.disagree(act.name+" / events", "the last event about %s's %s session is %v, want the session %s", rs.owner, st, ev, st)
			}
		case st == protocol.StatePaused && act.sees(rs.acct.id, rs.owner, protocol.StateActive):
			if !got || ev.name != "session_hidden" {
				w.disagree(act.name+" / events", "the last event about a session that paused is %v, want session_hidden", ev)
			}
		}
	}
	return cells
}

// watcherCells: every event the watcher's stream sent is one it may see by
// the account's default in force when it came: the first resync starts
// the first phase's default (before it, new accounts' domain/own), each
// next one the next.
func (w *visWorld) watcherCells(uid, acct string, events []sse) int {
	cells, phase := 0, -1
	for _, ev := range events {
		pair := [2]string{"domain", "own"}
		if phase >= 0 {
			pair = visPairs[phase]
		}
		act := visActor{name: fmt.Sprintf("watcher under default %s/%s", pair[0], pair[1]), acct: acct, uid: uid,
			role: protocol.RoleMember, view: pair[0], control: pair[1]}
		switch ev.name {
		case "resync":
			phase++
		case "session":
			cells++
			var ss protocol.Session
			require.NoError(w.t, json.Unmarshal([]byte(ev.data), &ss))
			rs, ok := w.reg[ss.ID]
			switch {
			case !ok || !act.sees(rs.acct.id, rs.owner, ss.State):
				w.disagree(act.name+" / events", "a session event it may not see: %s", ev.data)
			case ss.CanControl != act.controls(rs.acct.id, rs.owner, ss.State):
				w.disagree(act.name+" / events", "can_control %v: %s", ss.CanControl, ev.data)
			}
		case "session_hidden":
			cells++
			if pair[0] != "domain" {
				w.disagree(act.name+" / events", "session_hidden about a session it never could see: %s", ev.data)
			}
		}
	}
	require.Equal(w.t, len(visPairs)-1, phase, "one resync per change of the default")
	return cells
}
