package httpapi_test

// The REST API and the page's event stream held to SPEC.md ("Who may see
// and do what", "Errors and bad input", "The License Usage page") and to
// docs/api.md and the OpenAPI document, where encoding/json, the stream's
// filters or the order of checks were more lenient than the rules.

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seatbroker/seatbroker/broker/protocol"
	"github.com/seatbroker/seatbroker/broker/server"
)

// TestAnAdminCannotAddASecondOwner: POST /users takes role admin or
// member (OpenAPI enum ["admin","member"], and the refusal's own sentence
// "must be admin or member"). An admin must not be able to mint an
// "owner", a user that afterwards cannot be blocked nor have its role
// changed by anyone.
func TestAnAdminCannotAddASecondOwner(t *testing.T) {
	t.Parallel()
	e := newEnv(t, server.Options{})
	a := e.account(5, false)
	a.user("adm", protocol.RoleAdmin)
	admTok := e.signIn(a.id, "adm")
	before := e.snapshot()

	r := e.request(http.MethodPost, "/api/v1/users", admTok,
		map[string]any{"name": "boss2", "role": "owner", "password": password})
	if r.status == http.StatusCreated {
		var u protocol.User
		require.NoError(t, json.Unmarshal(r.body, &u))
		// what the admin made: an owner nobody can block or demote
		b := e.request(http.MethodPost, "/api/v1/users/"+u.ID+"/block", a.token, nil)
		p := e.request(http.MethodPatch, "/api/v1/users/"+u.ID, a.token, map[string]string{"role": "member"})
		t.Errorf("an admin added a user with role %q (201); the real owner can then neither block it (%d) nor demote it (%d)",
			u.Role, b.status, p.status)
	}
	assert.Equal(t, http.StatusBadRequest, r.status, "%s", r.body)
	if r.status == http.StatusBadRequest {
		assert.Equal(t, protocol.CodeInvalidRequest, r.errCode(t))
		assert.Equal(t, before, e.snapshot(), "refused input changes nothing")
	}
}

// TestALoweredViewTakesRowsOffTheOpenStream: the page learns only
// through GET /events. When the viewer's view is lowered (domain -> own)
// while its stream is open, the sessions it may no longer see must leave
// the page (session_hidden, or a resync that makes it re-fetch), "within
// a second of any change" (SPEC, The License Usage page; invariant 6).
// Otherwise the other user's row stays on the page for good: even its end
// is no longer sent to this viewer.
func TestALoweredViewTakesRowsOffTheOpenStream(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e := newEnv(t, server.Options{})
	a := e.account(5, false)
	viewer := a.user("viewer", protocol.RoleMember)
	q := a.user("q", protocol.RoleMember)
	ck, _ := e.webSession(a.id, "viewer")
	events := e.openStream(ctx, "Cookie", cookieHeader(ck))
	next(t, events, time.Second, func(ev sse) bool { return ev.name == "overview" })

	s := a.open(q.ID, "q-desk")
	next(t, events, time.Second, sessionEvent(s.ID, protocol.StateActive)) // the row is on the page

	// the admin narrows the viewer to its own sessions
	e.mustDo(http.MethodPatch, "/api/v1/users/"+viewer.ID, a.token, map[string]string{"view": "own", "control": "own"}, nil)
	r := e.request(http.MethodGet, "/api/v1/sessions/"+s.ID, e.signIn(a.id, "viewer"), nil)
	require.Equal(t, http.StatusNotFound, r.status, "the API hides it now")

	gone := func(ev sse) bool {
		if ev.name == "resync" {
			return true
		}
		if ev.name == "session_hidden" {
			var h struct{ ID string }
			return json.Unmarshal([]byte(ev.data), &h) == nil && h.ID == s.ID
		}
		return ev.name == "session" && sessionEvent(s.ID, protocol.StateEnded)(ev)
	}
	deadline := time.After(1500 * time.Millisecond)
	// the other user's session ends meanwhile: not even that reaches the page
	_, err := e.b.CloseSession(ctx, a.id, q.ID, "q", s.ID, "")
	require.NoError(t, err)
	for {
		select {
		case ev, ok := <-events:
			require.True(t, ok, "the stream ended")
			if gone(ev) {
				return
			}
		case <-deadline:
			t.Fatalf("the viewer's view was lowered to own, yet its stream sent neither session_hidden nor resync for %s "+
				"(nor its end): the page keeps showing another user's session it may no longer see", s.ID)
		}
	}
}

// TestARaisedViewBringsSessionsToTheOpenStream: the other way round,
// a viewer raised from own to domain must see the account's sessions on
// its open page (a resync, or the sessions), not only those that happen
// to change later.
func TestARaisedViewBringsSessionsToTheOpenStream(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e := newEnv(t, server.Options{})
	a := e.account(5, false)
	viewer := a.user("viewer", protocol.RoleMember)
	q := a.user("q", protocol.RoleMember)
	e.mustDo(http.MethodPatch, "/api/v1/users/"+viewer.ID, a.token, map[string]string{"view": "own", "control": "own"}, nil)
	s := a.open(q.ID, "q-desk")
	ck, _ := e.webSession(a.id, "viewer")
	events := e.openStream(ctx, "Cookie", cookieHeader(ck))
	next(t, events, time.Second, func(ev sse) bool { return ev.name == "overview" })

	e.mustDo(http.MethodPatch, "/api/v1/users/"+viewer.ID, a.token, map[string]string{"view": "domain"}, nil)
	deadline := time.After(1500 * time.Millisecond)
	for {
		select {
		case ev, ok := <-events:
			require.True(t, ok, "the stream ended")
			if ev.name == "resync" || sessionEvent(s.ID, protocol.StateActive)(ev) {
				return
			}
		case <-deadline:
			t.Fatalf("the viewer was raised to view domain; its open page got neither a resync nor session %s", s.ID)
		}
	}
}

// TestADenialListsOnlySessionsTheUserMayEnd: a seat denial carries
// "the user's own sessions that it may end to make room" (SPEC, seat rule
// 5; docs/protocol.md "own_sessions (the user's sessions it may end)").
// A member with control none may end none of them, yet the denial lists
// them with can_control true, and ending one is refused.
func TestADenialListsOnlySessionsTheUserMayEnd(t *testing.T) {
	t.Parallel()
	e := newEnv(t, server.Options{})
	a := e.account(1, false)
	m := a.user("m", protocol.RoleMember)
	e.mustDo(http.MethodPatch, "/api/v1/users/"+m.ID, a.token, map[string]string{"view": "own", "control": "none"}, nil)
	tok := e.signIn(a.id, "m")
	held := a.open(m.ID, "desk-1") // the account's only license

	r := e.request(http.MethodPost, "/api/v1/codes", tok, map[string]string{"device_id": "desk-2"})
	require.Equal(t, http.StatusConflict, r.status, "%s", r.body)
	var eb protocol.ErrorBody
	require.NoError(t, json.Unmarshal(r.body, &eb))
	require.Equal(t, protocol.CodeAccountLimit, eb.Error.Code)
	assert.Equal(t, e.srv.URL+"/#usage", eb.Error.PageURL, "the page on the address the client reached: a person can open it")

	for _, s := range eb.Error.Own {
		var got struct{ Results []protocol.EndResult }
		e.mustDo(http.MethodPost, "/api/v1/sessions/end", tok, map[string][]string{"session_ids": {s.ID}}, &got)
		require.Len(t, got.Results, 1)
		res := got.Results[0]
		code := protocol.Code("")
		if res.Error != nil {
			code = res.Error.Code
		}
		assert.True(t, res.OK, "the denial offered session %s (can_control=%v) to end, but ending it answers %q",
			s.ID, s.CanControl, code)
	}
	_ = held
}

// TestAccountDefaultsCannotMakeAnOverrideWiderThanView: the API
// refuses a user override that, with the account's default, would give
// control wider than view (authz_test: "an override narrower than the
// account's control is refused too"). The mirror change, narrowing the
// account's default view under a user's control override, is accepted,
// and leaves the user with a stored pair the rule rejects (control
// domain, view own), silently clamped.
func TestAccountDefaultsCannotMakeAnOverrideWiderThanView(t *testing.T) {
	t.Parallel()
	e := newEnv(t, server.Options{})
	a := e.account(5, false)
	m := a.user("m", protocol.RoleMember)
	// account view domain: a control override of domain is fine
	e.mustDo(http.MethodPatch, "/api/v1/users/"+m.ID, a.token, map[string]string{"control": "domain"}, nil)
	before := e.snapshot()
	r := e.request(http.MethodPatch, "/api/v1/settings", a.token, map[string]string{"view": "own", "control": "own"})
	var u protocol.User
	e.mustDo(http.MethodGet, "/api/v1/users/"+m.ID, a.token, nil, &u)
	assert.Equal(t, http.StatusBadRequest, r.status,
		"the new default view own leaves user m with control %q over view %q (effective %s/%s)",
		u.Control, u.EffectiveView, u.EffectiveView, u.EffectiveControl)
	if r.status == http.StatusBadRequest {
		assert.Equal(t, before, e.snapshot())
	}
}

// TestBodiesAreJSONObjectsWithExactFieldNames: docs/api.md "Bodies are JSON
// objects ... Unknown fields ... get 400", and every OpenAPI body schema
// is an object with additionalProperties false. A body of `null` is not
// an object, and "SESSION_IDS" / "Seats" are not the documented fields
// (encoding/json matches names case-insensitively).
func TestBodiesAreJSONObjectsWithExactFieldNames(t *testing.T) {
	t.Parallel()
	e := newEnv(t, server.Options{})
	a := e.account(5, false)
	m := a.user("m", protocol.RoleMember)
	s := a.open(m.ID, "d")
	before := e.snapshot()
	for _, tc := range []struct {
		method, path string
		body         string
	}{
		{http.MethodPatch, "/api/v1/settings", `null`},
		{http.MethodPatch, "/api/v1/users/" + m.ID, `null`},
		{http.MethodPost, "/api/v1/users/" + m.ID + "/revoke-tokens", `null`},
		{http.MethodPost, "/api/v1/sessions/end", `{"SESSION_IDS":["` + s.ID + `"]}`},
		{http.MethodPatch, "/api/v1/settings", `{"Seats":7}`},
		{http.MethodPatch, "/api/v1/settings", `{"seats":7,"seats":8}`},
		{http.MethodPatch, "/api/v1/settings", `[{"seats":7}]`},
		{http.MethodPatch, "/api/v1/settings", `"seats"`},
	} {
		r := e.request(tc.method, tc.path, a.token, tc.body)
		assert.Equal(t, http.StatusBadRequest, r.status, "%s %s %s: %s", tc.method, tc.path, tc.body, r.body)
	}
	assert.True(t, mapsEqual(before, e.snapshot()), "refused input changed Redis")
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestSeatsHeldIsTheSameOnEveryRoute: the User schema's seats_held
// is what the user holds. GET /users says 1; GET /users/{id}, GET /me and
// PATCH /users/{id} say 0 for the same user at the same moment.
func TestSeatsHeldIsTheSameOnEveryRoute(t *testing.T) {
	t.Parallel()
	e := newEnv(t, server.Options{})
	a := e.account(5, false)
	m := a.user("m", protocol.RoleMember)
	a.open(m.ID, "d")
	tok := e.signIn(a.id, "m")

	var list struct{ Users []protocol.User }
	e.mustDo(http.MethodGet, "/api/v1/users", a.token, nil, &list)
	listed := -1
	for _, u := range list.Users {
		if u.ID == m.ID {
			listed = u.SeatsHeld
		}
	}
	require.Equal(t, 1, listed, "GET /users")

	var one protocol.User
	e.mustDo(http.MethodGet, "/api/v1/users/"+m.ID, a.token, nil, &one)
	var me struct{ User protocol.User }
	e.mustDo(http.MethodGet, "/api/v1/me", tok, nil, &me)
	var patched protocol.User
	e.mustDo(http.MethodPatch, "/api/v1/users/"+m.ID, a.token, map[string]any{"max_seats": 3}, &patched)
	assert.Equal(t, listed, one.SeatsHeld, "GET /users/{id}")
	assert.Equal(t, listed, me.User.SeatsHeld, "GET /me")
	assert.Equal(t, listed, patched.SeatsHeld, "PATCH /users/{id}")
}

// TestABodyThatIsNotUTF8IsRefused: a body that is not UTF-8 is malformed
// JSON (RFC 8259) and "Malformed ... input gets a clear error and changes
// nothing" (SPEC); the websocket refuses it ("not UTF-8"), and checkText
// means to. encoding/json silently turns the bad byte into U+FFFD, so the
// API stores a name nobody typed.
func TestABodyThatIsNotUTF8IsRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, server.Options{})
	a := e.account(5, false)
	before := e.snapshot()
	r := e.request(http.MethodPost, "/api/v1/users", a.token, []byte("{\"name\":\"bob\xff\"}"))
	assert.Equal(t, http.StatusBadRequest, r.status, "%s", r.body)
	r = e.request(http.MethodPost, "/api/v1/codes", a.token, []byte("{\"device_id\":\"desk\xfe\",\"device_name\":\"host\xff\"}"))
	assert.Equal(t, http.StatusBadRequest, r.status, "%s", r.body)
	assert.True(t, mapsEqual(before, e.snapshot()), "refused input changed Redis")
}

// TestMalformedOrForeignUserIDsAreNotFoundForMembers: docs/api.md "Malformed
// or unknown IDs, and anything of another account, get 404 not_found."
// A member naming a malformed id, or a user of another account, in the
// users routes gets 403 forbidden instead.
func TestMalformedOrForeignUserIDsAreNotFoundForMembers(t *testing.T) {
	t.Parallel()
	e := newEnv(t, server.Options{})
	a, b := e.account(5, false), e.account(5, false)
	a.user("m", protocol.RoleMember)
	tok := e.signIn(a.id, "m")
	for _, id := range []string{"nope", b.owner.ID} {
		for _, tc := range []struct {
			method, path string
			body         any
		}{
			{http.MethodPatch, "/api/v1/users/" + id, map[string]string{"name": "x"}},
			{http.MethodPut, "/api/v1/users/" + id + "/password", map[string]string{"password": "long-enough-pw"}},
			{http.MethodPost, "/api/v1/users/" + id + "/block", nil},
		} {
			r := e.request(tc.method, tc.path, tok, tc.body)
			assert.Equal(t, http.StatusNotFound, r.status, "%s %s: %s", tc.method, tc.path, r.body)
		}
	}
	// a user of its own account: it exists, and the member may not act on it
	other := a.user("o", protocol.RoleMember)
	r := e.request(http.MethodPost, "/api/v1/users/"+other.ID+"/block", tok, nil)
	assert.Equal(t, http.StatusForbidden, r.status, "%s", r.body)
	r = e.request(http.MethodPut, "/api/v1/users/"+other.ID+"/password", tok, map[string]string{"password": "long-enough-pw"})
	assert.Equal(t, http.StatusForbidden, r.status, "%s", r.body)
}

// TestEveryAnswerRefusesSniffingAndFraming: API answers, API errors, 404s
// outside the API and the OpenAPI document go out with nosniff and no
// framing (docs/api.md), as the page does; the page keeps its own
// Content-Security-Policy, and the event stream still streams.
func TestEveryAnswerRefusesSniffingAndFraming(t *testing.T) {
	t.Parallel()
	e := newEnv(t, server.Options{})
	a := e.account(1, false)
	for _, c := range []struct{ path, token string }{
		{"/api/v1/me", a.token},      // an answer
		{"/api/v1/me", ""},           // 401
		{"/api/v1/nope", ""},         // 404 of the API
		{"/nope", ""},                // 404 outside it
		{"/api/v1/openapi.json", ""}, // the document
		{"/healthz", ""},
	} {
		r := e.request(http.MethodGet, c.path, c.token, nil)
		assert.Equal(t, "nosniff", r.header.Get("X-Content-Type-Options"), "%s (%d)", c.path, r.status)
		assert.Equal(t, "DENY", r.header.Get("X-Frame-Options"), "%s (%d)", c.path, r.status)
		assert.Equal(t, "default-src 'none'; frame-ancestors 'none'", r.header.Get("Content-Security-Policy"),
			"%s (%d)", c.path, r.status)
	}
	page := e.request(http.MethodGet, "/", "", nil)
	require.Equal(t, http.StatusOK, page.status)
	assert.Contains(t, page.header.Get("Content-Security-Policy"), "script-src 'self'", "the page's own policy")
	assert.Contains(t, page.header.Get("Content-Security-Policy"), "frame-ancestors 'none'")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := e.openStream(ctx, "Authorization", "Bearer "+a.token)
	next(t, events, time.Second, func(ev sse) bool { return ev.name == "overview" })
}
