package httpapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seatbroker/seatbroker/broker/protocol"
	"github.com/seatbroker/seatbroker/broker/server"
)

// The words of the authorization table.
const (
	own       = "own"       // the caller's own session
	other     = "other"     // another user's session
	same      = "same"      // in the caller's account
	otheracct = "otheracct" // in another account
	active    = protocol.StateActive
	paused    = protocol.StatePaused
	listed    = true
	hidden    = false
)

// authzCell is one combination and the answers expected for it: whether
// the session is in the caller's list, the status of GET, the outcome of
// End Selected Sessions (ok or the per-session code) and the status of
// pause. Written out by hand from SPEC.md ("Who may see and do what"),
// not computed by the policy under test. Owner and admins always have
// domain for both, whatever their override says. Pausing is the session
// user's own right (SPEC: only its own user may pause it), whatever its
// view and control; another user's session it may see answers forbidden,
// one it may not see not found. There is no "own session in another
// account", so that combination has no row.
type authzCell struct {
	role, view, control string
	whose, acct, state  string
	list                bool
	get                 int
	end                 string
	pause               int
}

var authzTable = []authzCell{
	{"owner", "none", "none", own, same, active, listed, 200, "ok", 200},
	{"owner", "none", "none", own, same, paused, listed, 200, "ok", 400},
	{"owner", "none", "none", other, same, active, listed, 200, "ok", 403},
	{"owner", "none", "none", other, same, paused, hidden, 404, "not_found", 404},
	{"owner", "none", "none", other, otheracct, active, hidden, 404, "not_found", 404},
	{"owner", "none", "none", other, otheracct, paused, hidden, 404, "not_found", 404},
	{"owner", "own", "none", own, same, active, listed, 200, "ok", 200},
	{"owner", "own", "none", own, same, paused, listed, 200, "ok", 400},
	{"owner", "own", "none", other, same, active, listed, 200, "ok", 403},
	{"owner", "own", "none", other, same, paused, hidden, 404, "not_found", 404},
	{"owner", "own", "none", other, otheracct, active, hidden, 404, "not_found", 404},
	{"owner", "own", "none", other, otheracct, paused, hidden, 404, "not_found", 404},
	{"owner", "own", "own", own, same, active, listed, 200, "ok", 200},
	{"owner", "own", "own", own, same, paused, listed, 200, "ok", 400},
	{"owner", "own", "own", other, same, active, listed, 200, "ok", 403},
	{"owner", "own", "own", other, same, paused, hidden, 404, "not_found", 404},
	{"owner", "own", "own", other, otheracct, active, hidden, 404, "not_found", 404},
	{"owner", "own", "own", other, otheracct, paused, hidden, 404, "not_found", 404},
	{"owner", "domain", "none", own, same, active, listed, 200, "ok", 200},
	{"owner", "domain", "none", own, same, paused, listed, 200, "ok", 400},
	{"owner", "domain", "none", other, same, active, listed, 200, "ok", 403},
	{"owner", "domain", "none", other, same, paused, hidden, 404, "not_found", 404},
	{"owner", "domain", "none", other, otheracct, active, hidden, 404, "not_found", 404},
	{"owner", "domain", "none", other, otheracct, paused, hidden, 404, "not_found", 404},
	{"owner", "domain", "own", own, same, active, listed, 200, "ok", 200},
	{"owner", "domain", "own", own, same, paused, listed, 200, "ok", 400},
	{"owner", "domain", "own", other, same, active, listed, 200, "ok", 403},
	{"owner", "domain", "own", other, same, paused, hidden, 404, "not_found", 404},
	{"owner", "domain", "own", other, otheracct, active, hidden, 404, "not_found", 404},
	{"owner", "domain", "own", other, otheracct, paused, hidden, 404, "not_found", 404},
	{"owner", "domain", "domain", own, same, active, listed, 200, "ok", 200},
	{"owner", "domain", "domain", own, same, paused, listed, 200, "ok", 400},
	{"owner", "domain", "domain", other, same, active, listed, 200, "ok", 403},
	{"owner", "domain", "domain", other, same, paused, hidden, 404, "not_found", 404},
	{"owner", "domain", "domain", other, otheracct, active, hidden, 404, "not_found", 404},
	{"owner", "domain", "domain", other, otheracct, paused, hidden, 404, "not_found", 404},
	{"admin", "none", "none", own, same, active, listed, 200, "ok", 200},
	{"admin", "none", "none", own, same, paused, listed, 200, "ok", 400},
	{"admin", "none", "none", other, same, active, listed, 200, "ok", 403},
	{"admin", "none", "none", other, same, paused, hidden, 404, "not_found", 404},
	{"admin", "none", "none", other, otheracct, active, hidden, 404, "not_found", 404},
	{"admin", "none", "none", other, otheracct, paused, hidden, 404, "not_found", 404},
	{"admin", "own", "none", own, same, active, listed, 200, "ok", 200},
	{"admin", "own", "none", own, same, paused, listed, 200, "ok", 400},
	{"admin", "own", "none", other, same, active, listed, 200, "ok", 403},
	{"admin", "own", "none", other, same, paused, hidden, 404, "not_found", 404},
	{"admin", "own", "none", other, otheracct, active, hidden, 404, "not_found", 404},
	{"admin", "own", "none", other, otheracct, paused, hidden, 404, "not_found", 404},
	{"admin", "own", "own", own, same, active, listed, 200, "ok", 200},
	{"admin", "own", "own", own, same, paused, listed, 200, "ok", 400},
	{"admin", "own", "own", other, same, active, listed, 200, "ok", 403},
	{"admin", "own", "own", other, same, paused, hidden, 404, "not_found", 404},
	{"admin", "own", "own", other, otheracct, active, hidden, 404, "not_found", 404},
	{"admin", "own", "own", other, otheracct, paused, hidden, 404, "not_found", 404},
	{"admin", "domain", "none", own, same, active, listed, 200, "ok", 200},
	{"admin", "domain", "none", own, same, paused, listed, 200, "ok", 400},
	{"admin", "domain", "none", other, same, active, listed, 200, "ok", 403},
	{"admin", "domain", "none", other, same, paused, hidden, 404, "not_found", 404},
	{"admin", "domain", "none", other, otheracct, active, hidden, 404, "not_found", 404},
	{"admin", "domain", "none", other, otheracct, paused, hidden, 404, "not_found", 404},
	{"admin", "domain", "own", own, same, active, listed, 200, "ok", 200},
	{"admin", "domain", "own", own, same, paused, listed, 200, "ok", 400},
	{"admin", "domain", "own", other, same, active, listed, 200, "ok", 403},
	{"admin", "domain", "own", other, same, paused, hidden, 404, "not_found", 404},
	{"admin", "domain", "own", other, otheracct, active, hidden, 404, "not_found", 404},
	{"admin", "domain", "own", other, otheracct, paused, hidden, 404, "not_found", 404},
	{"admin", "domain", "domain", own, same, active, listed, 200, "ok", 200},
	{"admin", "domain", "domain", own, same, paused, listed, 200, "ok", 400},
	{"admin", "domain", "domain", other, same, active, listed, 200, "ok", 403},
	{"admin", "domain", "domain", other, same, paused, hidden, 404, "not_found", 404},
	{"admin", "domain", "domain", other, otheracct, active, hidden, 404, "not_found", 404},
	{"admin", "domain", "domain", other, otheracct, paused, hidden, 404, "not_found", 404},
	{"member", "none", "none", own, same, active, hidden, 404, "not_found", 200},
	{"member", "none", "none", own, same, paused, hidden, 404, "not_found", 400},
	{"member", "none", "none", other, same, active, hidden, 404, "not_found", 404},
	{"member", "none", "none", other, same, paused, hidden, 404, "not_found", 404},
	{"member", "none", "none", other, otheracct, active, hidden, 404, "not_found", 404},
	{"member", "none", "none", other, otheracct, paused, hidden, 404, "not_found", 404},
	{"member", "own", "none", own, same, active, listed, 200, "forbidden", 200},
	{"member", "own", "none", own, same, paused, listed, 200, "forbidden", 400},
	{"member", "own", "none", other, same, active, hidden, 404, "not_found", 404},
	{"member", "own", "none", other, same, paused, hidden, 404, "not_found", 404},
	{"member", "own", "none", other, otheracct, active, hidden, 404, "not_found", 404},
	{"member", "own", "none", other, otheracct, paused, hidden, 404, "not_found", 404},
	{"member", "own", "own", own, same, active, listed, 200, "ok", 200},
	{"member", "own", "own", own, same, paused, listed, 200, "ok", 400},
	{"member", "own", "own", other, same, active, hidden, 404, "not_found", 404},
	{"member", "own", "own", other, same, paused, hidden, 404, "not_found", 404},
	{"member", "own", "own", other, otheracct, active, hidden, 404, "not_found", 404},
	{"member", "own", "own", other, otheracct, paused, hidden, 404, "not_found", 404},
	{"member", "domain", "none", own, same, active, listed, 200, "forbidden", 200},
	{"member", "domain", "none", own, same, paused, listed, 200, "forbidden", 400},
	{"member", "domain", "none", other, same, active, listed, 200, "forbidden", 403},
	{"member", "domain", "none", other, same, paused, hidden, 404, "not_found", 404},
	{"member", "domain", "none", other, otheracct, active, hidden, 404, "not_found", 404},
	{"member", "domain", "none", other, otheracct, paused, hidden, 404, "not_found", 404},
	{"member", "domain", "own", own, same, active, listed, 200, "ok", 200},
	{"member", "domain", "own", own, same, paused, listed, 200, "ok", 400},
	{"member", "domain", "own", other, same, active, listed, 200, "forbidden", 403},
	{"member", "domain", "own", other, same, paused, hidden, 404, "not_found", 404},
	{"member", "domain", "own", other, otheracct, active, hidden, 404, "not_found", 404},
	{"member", "domain", "own", other, otheracct, paused, hidden, 404, "not_found", 404},
	{"member", "domain", "domain", own, same, active, listed, 200, "ok", 200},
	{"member", "domain", "domain", own, same, paused, listed, 200, "ok", 400},
	{"member", "domain", "domain", other, same, active, listed, 200, "ok", 403},
	{"member", "domain", "domain", other, same, paused, hidden, 404, "not_found", 404},
	{"member", "domain", "domain", other, otheracct, active, hidden, 404, "not_found", 404},
	{"member", "domain", "domain", other, otheracct, paused, hidden, 404, "not_found", 404},
}

// TestAuthorizationTable checks every cell of authzTable through the real
// HTTP API on a real Redis: each caller (role x view x control, set as the
// user's override) gets fresh accounts and, per cell, a session to read,
// one to end and one to pause.
func TestAuthorizationTable(t *testing.T) {
	t.Parallel()
	e := newEnv(t, server.Options{})
	type subject struct{ role, view, control string }
	groups := map[subject][]authzCell{}
	var order []subject
	for _, c := range authzTable {
		s := subject{c.role, c.view, c.control}
		if _, ok := groups[s]; !ok {
			order = append(order, s)
		}
		groups[s] = append(groups[s], c)
	}
	require.Len(t, order, 18, "3 roles x 6 valid view/control pairs")
	for _, s := range order {
		cells := groups[s]
		t.Run(fmt.Sprintf("%s/view=%s/control=%s", s.role, s.view, s.control), func(t *testing.T) {
			t.Parallel()
			e := *e
			e.t = t
			a, b := e.account(50, false), e.account(50, false)
			subj := a.owner
			if s.role != protocol.RoleOwner {
				subj = a.user("subject", s.role)
			}
			e.mustDo(http.MethodPatch, "/api/v1/users/"+subj.ID, a.token,
				map[string]string{"view": s.view, "control": s.control}, nil)
			token := a.token
			if s.role != protocol.RoleOwner {
				token = e.signIn(a.id, "subject")
			}
			q := a.user("q", protocol.RoleMember)
			for _, c := range cells {
				acct, uid := a, subj.ID
				switch {
				case c.acct == otheracct:
					acct, uid = b, b.owner.ID
				case c.whose == other:
					uid = q.ID
				}
				mk := func() protocol.Session {
					if c.state == paused {
						return acct.openPaused(uid, "desk")
					}
					return acct.open(uid, "desk")
				}
				read, end, pause := mk(), mk(), mk()
				name := fmt.Sprintf("%s/%s/%s", c.whose, c.acct, c.state)

				var list struct{ Sessions []protocol.Session }
				e.mustDo(http.MethodGet, "/api/v1/sessions?state=standby,active,paused,terminating&limit=1000", token, nil, &list)
				found := false
				for _, ss := range list.Sessions {
					found = found || ss.ID == read.ID
				}
				assert.Equal(t, c.list, found, "%s: listed", name)

				assert.Equal(t, c.get, e.request(http.MethodGet, "/api/v1/sessions/"+read.ID, token, nil).status, "%s: get", name)

				var ended struct{ Results []protocol.EndResult }
				e.mustDo(http.MethodPost, "/api/v1/sessions/end", token, map[string][]string{"session_ids": {end.ID}}, &ended)
				require.Len(t, ended.Results, 1)
				got := "ok"
				if r := ended.Results[0]; !r.OK {
					require.NotNil(t, r.Error, "%s: a failed result carries its error", name)
					got = string(r.Error.Code)
				}
				assert.Equal(t, c.end, got, "%s: end", name)

				pr := e.request(http.MethodPost, "/api/v1/sessions/"+pause.ID+"/pause", token, nil)
				assert.Equal(t, c.pause, pr.status, "%s: pause %s", name, pr.body)
				if pr.status == http.StatusOK {
					var ps protocol.Session
					require.NoError(t, json.Unmarshal(pr.body, &ps))
					assert.Equal(t, paused, ps.State, "%s: paused", name)
				} else {
					pr.errCode(t)
				}
			}
		})
	}
}

// TestControlWiderThanViewIsRejected holds the rule for per-user
// overrides (add and change) and for the account's defaults; nothing
// changes.
func TestControlWiderThanViewIsRejected(t *testing.T) {
	t.Parallel()
	e := newEnv(t, server.Options{})
	a := e.account(5, false)
	m := a.user("m", protocol.RoleMember)
	before := e.snapshot()
	for _, tc := range []struct{ method, path string }{
		{http.MethodPatch, "/api/v1/users/" + m.ID},
		{http.MethodPatch, "/api/v1/settings"},
	} {
		for _, pair := range [][2]string{{"none", "own"}, {"none", "domain"}, {"own", "domain"}} {
			r := e.request(tc.method, tc.path, a.token, map[string]string{"view": pair[0], "control": pair[1]})
			assert.Equal(t, http.StatusBadRequest, r.status, "%s %s %v", tc.method, tc.path, pair)
			assert.Equal(t, protocol.CodeInvalidRequest, r.errCode(t))
		}
	}
	r := e.request(http.MethodPost, "/api/v1/users", a.token, map[string]string{"name": "n", "view": "own", "control": "domain"})
	assert.Equal(t, http.StatusBadRequest, r.status)
	// an override narrower than the account's control is refused too
	r = e.request(http.MethodPatch, "/api/v1/users/"+m.ID, a.token, map[string]string{"view": "none"})
	assert.Equal(t, http.StatusBadRequest, r.status, "view none under the account's control own")
	assert.Equal(t, before, e.snapshot())
}

// TestMembersFollowAccountDefaultsUntilOverridden: a member with no
// override sees what the account's defaults allow; its override wins.
func TestMembersFollowAccountDefaultsUntilOverridden(t *testing.T) {
	t.Parallel()
	e := newEnv(t, server.Options{})
	a := e.account(5, false)
	m := a.user("m", protocol.RoleMember)
	q := a.user("q", protocol.RoleMember)
	s := a.open(q.ID, "d")
	tok := e.signIn(a.id, "m")
	get := func() int { return e.request(http.MethodGet, "/api/v1/sessions/"+s.ID, tok, nil).status }
	assert.Equal(t, http.StatusOK, get(), "new accounts default to view domain")
	e.mustDo(http.MethodPatch, "/api/v1/settings", a.token, map[string]string{"view": "own", "control": "own"}, nil)
	assert.Equal(t, http.StatusNotFound, get(), "account default view own")
	e.mustDo(http.MethodPatch, "/api/v1/users/"+m.ID, a.token, map[string]string{"view": "domain"}, nil)
	assert.Equal(t, http.StatusOK, get(), "override view domain")
	var me struct {
		Permissions struct{ View, Control string }
	}
	e.mustDo(http.MethodGet, "/api/v1/me", tok, nil, &me)
	assert.Equal(t, "domain", me.Permissions.View)
	assert.Equal(t, "own", me.Permissions.Control)
	e.mustDo(http.MethodPatch, "/api/v1/users/"+m.ID, a.token, map[string]string{"view": ""}, nil)
	assert.Equal(t, http.StatusNotFound, get(), "\"\" follows the account again")
}

// TestMembersCannotAdminister: users, settings and PPU are for the owner
// and admins.
func TestMembersCannotAdminister(t *testing.T) {
	t.Parallel()
	e := newEnv(t, server.Options{})
	a := e.account(5, true)
	m := a.user("m", protocol.RoleMember)
	tok := e.signIn(a.id, "m")
	before := e.snapshot()
	for _, tc := range []struct {
		method, path string
		body         any
	}{
		{http.MethodGet, "/api/v1/users", nil},
		{http.MethodPost, "/api/v1/users", map[string]string{"name": "x"}},
		{http.MethodPatch, "/api/v1/users/" + m.ID, map[string]string{"view": "domain"}},
		{http.MethodPost, "/api/v1/users/" + a.owner.ID + "/block", nil},
		{http.MethodPatch, "/api/v1/settings", map[string]int{"seats": 100}},
		{http.MethodGet, "/api/v1/ppu", nil},
		{http.MethodGet, "/api/v1/ppu/ledger", nil},
		{http.MethodGet, "/api/v1/ppu/reconcile", nil},
		{http.MethodPost, "/api/v1/ppu/topup", map[string]int{"minutes": 10}},
	} {
		r := e.request(tc.method, tc.path, tok, tc.body)
		assert.Equal(t, http.StatusForbidden, r.status, "%s %s", tc.method, tc.path)
		assert.Equal(t, protocol.CodeForbidden, r.errCode(t))
	}
	// another user's record is not found to a member; its own is readable
	assert.Equal(t, http.StatusNotFound, e.request(http.MethodGet, "/api/v1/users/"+a.owner.ID, tok, nil).status)
	assert.Equal(t, http.StatusOK, e.request(http.MethodGet, "/api/v1/users/"+m.ID, tok, nil).status)
	assert.Equal(t, before, e.snapshot())
}

// TestOnlyTheOwnerChangesTheOwner: an admin who could set the owner's
// password could sign in as the owner, the one user that cannot be
// blocked or demoted, and take the account over; one who could revoke the
// owner's tokens, or cap its seats at 0, could lock the owner out. All
// answer forbidden to admins and change nothing; the owner does them
// itself, and admins still do them for other users.
func TestOnlyTheOwnerChangesTheOwner(t *testing.T) {
	t.Parallel()
	e := newEnv(t, server.Options{})
	a := e.account(3, false)
	a.user("rogue", protocol.RoleAdmin)
	m := a.user("m", protocol.RoleMember)
	rogue := e.signIn(a.id, "rogue")
	before := e.snapshot()
	for _, tc := range []struct {
		method, path string
		body         any
	}{
		{http.MethodPut, "/api/v1/users/" + a.owner.ID + "/password", map[string]string{"password": "the-rogue-owns-it"}},
		{http.MethodPost, "/api/v1/users/" + a.owner.ID + "/revoke-tokens", nil},
		// nor rename it, or cap its seats
		{http.MethodPatch, "/api/v1/users/" + a.owner.ID, map[string]any{"max_seats": 0}},
		{http.MethodPatch, "/api/v1/users/" + a.owner.ID, map[string]any{"name": "not-the-owner"}},
	} {
		r := e.request(tc.method, tc.path, rogue, tc.body)
		assert.Equal(t, http.StatusForbidden, r.status, "%s %s: %s", tc.method, tc.path, r.body)
		assert.Equal(t, protocol.CodeForbidden, r.errCode(t))
	}
	assert.Equal(t, before, e.snapshot(), "the refusals changed nothing")
	assert.Equal(t, http.StatusOK, e.request(http.MethodGet, "/api/v1/me", a.token, nil).status, "the owner's token works")
	r := e.request(http.MethodPost, "/api/v1/auth/signin", "", map[string]string{
		"account": a.id, "name": "owner", "password": "the-rogue-owns-it", "kind": "client"})
	assert.Equal(t, http.StatusUnauthorized, r.status, "the admin's password is not the owner's")

	// admins act on other users
	e.mustDo(http.MethodPut, "/api/v1/users/"+m.ID+"/password", rogue, map[string]string{"password": "reset-by-an-admin"}, nil)
	e.mustDo(http.MethodPost, "/api/v1/users/"+m.ID+"/revoke-tokens", rogue, nil, nil)
	// the owner acts on itself
	e.mustDo(http.MethodPut, "/api/v1/users/"+a.owner.ID+"/password", a.token, map[string]string{"password": "the-owners-own-new"}, nil)
	var rv struct{ Revoked int }
	e.mustDo(http.MethodPost, "/api/v1/users/"+a.owner.ID+"/revoke-tokens", a.token, nil, &rv)
	assert.Equal(t, 1, rv.Revoked, "the owner signed itself out everywhere")
}
