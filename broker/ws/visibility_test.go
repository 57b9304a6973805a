package ws_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"

	"github.com/seatbroker/seatbroker/broker"
	"github.com/seatbroker/seatbroker/broker/protocol"
	"github.com/seatbroker/seatbroker/broker/ws"
	"github.com/seatbroker/seatbroker/internal/testredis"
)

// This file holds SPEC.md invariant 6 to every websocket message that
// names a session, sent by a connection that does not take part in it.
// The expected answers come from the model below, written from SPEC.md
// and docs/protocol.md, not from the code.

// wsActor is one connection and what the model knows of it.
type wsActor struct {
	name   string
	remote bool
	acct   string
	uid    string // desktop: its user
	tok    string // desktop: its token
	joined bool   // remote: it joined a session already
	c      *websocket.Conn
	held   map[string]bool // the sessions it takes part in
	seen   []protocol.ServerMessage
	n      int
}

// wsTarget is a session the actors do not take part in.
type wsTarget struct {
	label  string
	id     string
	acct   string
	owner  string
	state  string
	fence  string // its desktop grant's fencing token
	code   string // the code it was opened with
	secret string // its remote side's rejoin secret ("" if never joined)
}

// wsWant is an answer in the model's terms: the reply's type, its error
// code ("" for none) and the session's state in it.
type wsWant struct {
	typ   string
	code  protocol.Code
	state string
}

func wsErr(code protocol.Code) wsWant { return wsWant{typ: protocol.TypeError, code: code} }

// wantFor is the model. A connection acts only on the sessions it takes
// part in: any other session id, of its account or another, known or
// not, is not_found. What its role may never send answers the same
// whatever the session (a remote side pausing: forbidden; a desktop
// joining by code: forbidden; a remote side that joined already joining
// again: invalid_request). A desktop connection takes up a session by
// renewing it in its hello only as the session's own user with the grant's
// token (a reconnect; a wrong token is forbidden); a remote side takes one
// up by its code while it waits (standby), or by the rejoin secret its
// join gave it.
func wantFor(a *wsActor, op string, t wsTarget, rightKey bool) wsWant {
	switch op {
	case "pause", "resume":
		if a.remote {
			return wsErr(protocol.CodeForbidden)
		}
		return wsErr(protocol.CodeNotFound)
	case "close":
		return wsErr(protocol.CodeNotFound)
	case "join":
		switch {
		case !a.remote:
			return wsErr(protocol.CodeForbidden)
		case a.joined:
			return wsErr(protocol.CodeInvalidRequest)
		case t.state == protocol.StateStandby && rightKey:
			return wsWant{typ: protocol.TypeJoined, state: protocol.StateActive}
		}
		return wsErr(protocol.CodeNotFound)
	case "hello":
		switch {
		case a.remote && rightKey && t.secret != "":
			return wsWant{typ: protocol.TypeWelcome, state: t.state}
		case a.remote:
			return wsWant{typ: protocol.TypeWelcome, code: protocol.CodeNotFound}
		case t.acct == a.acct && t.owner == a.uid && rightKey:
			return wsWant{typ: protocol.TypeWelcome, state: t.state}
		case t.acct == a.acct && t.owner == a.uid:
			return wsWant{typ: protocol.TypeWelcome, code: protocol.CodeForbidden}
		}
		return wsWant{typ: protocol.TypeWelcome, code: protocol.CodeNotFound}
	}
	panic(op)
}

func wsDial(t *testing.T, url, tok string) *websocket.Conn {
	t.Helper()
	h := http.Header{}
	if tok != "" {
		h.Set("Authorization", "Bearer "+tok)
	}
	c, resp, err := websocket.DefaultDialer.Dial(url, h)
	require.NoError(t, err)
	_ = resp.Body.Close()
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// call sends m and returns its reply, keeping whatever else came.
func (a *wsActor) call(t *testing.T, m protocol.ClientMessage) protocol.ServerMessage {
	t.Helper()
	a.n++
	m.ID = fmt.Sprintf("r%d", a.n)
	require.NoError(t, a.c.WriteJSON(m))
	for {
		got := a.read(t)
		if got.ID == m.ID {
			return got
		}
	}
}

func (a *wsActor) read(t *testing.T) protocol.ServerMessage {
	t.Helper()
	require.NoError(t, a.c.SetReadDeadline(time.Now().Add(5*time.Second)))
	var got protocol.ServerMessage
	require.NoError(t, a.c.ReadJSON(&got), "%s", a.name)
	a.seen = append(a.seen, got)
	return got
}

// answer turns a reply into the model's terms; a hello's is its one
// session's status.
func answer(m protocol.ServerMessage) wsWant {
	w := wsWant{typ: m.Type}
	switch {
	case m.Error != nil:
		w.code = m.Error.Code
	case m.Type == protocol.TypeWelcome && len(m.Sessions) == 1 && m.Sessions[0].Error != nil:
		w.code = m.Sessions[0].Error.Code
	case m.Type == protocol.TypeWelcome && len(m.Sessions) == 1 && m.Sessions[0].Session != nil:
		w.state = m.Sessions[0].Session.State
	case m.Session != nil:
		w.state = m.Session.State
	}
	return w
}

// TestNoConnectionActsOnASessionItDoesNotTakePartIn: desktop connections
// of the session's own user (another device), of another member, of an
// admin, of the owner and of a user of another account, and remote
// connections (joined to another session, or to none), send every message
// that names a session (pause, resume, close, a hello renewing it, join by
// its code, a rejoin) for a member's session in every state, another
// account's, and an unknown id. Each answers as the model says; a foreign
// or unknown id exactly as a session of the same account that is not the
// connection's; and no connection hears of a session it does not take
// part in.
func TestNoConnectionActsOnASessionItDoesNotTakePartIn(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rc := redisClient(t)
	cfg := broker.DefaultConfig()
	cfg.Prefix = testredis.Prefix(t)
	cfg.JoinRate = 10000  // every wrong code here is the test's
	cfg.Lease = time.Hour // the actors send no heartbeat
	n := startNode(t, rc, cfg, ws.Options{})
	b := n.b
	acct, other := newAccount(t, b, 1000), newAccount(t, b, 1000)
	overrideDomain := func(name string, role string) (broker.Principal, string) {
		dom := protocol.ScopeDomain
		u, err := b.AddUser(ctx, acct.owner, broker.UserSpec{Name: name, Role: role, View: dom, Control: dom})
		require.NoError(t, err)
		p, err := b.PrincipalFor(ctx, acct.id, u.ID)
		require.NoError(t, err)
		tok, err := b.IssueToken(ctx, p, time.Hour, "test")
		require.NoError(t, err)
		return p, tok.Token
	}
	peer, peerTok := overrideDomain("peer", protocol.RoleMember)
	adm, admTok := overrideDomain("adm", protocol.RoleAdmin)

	// the sessions' user is ann; s0 is the session the joined remote
	// actor takes part in
	devices := 0
	mk := func(a account, uid, state string) wsTarget {
		devices++
		g, err := b.Open(ctx, broker.OpenRequest{Account: a.id, UserID: uid, DeviceID: fmt.Sprintf("d%d", devices), WithCode: true})
		require.NoError(t, err)
		tg := wsTarget{id: g.Session.ID, acct: a.id, owner: uid, fence: g.Fence, code: g.Session.Code, state: state}
		if state != protocol.StateStandby {
			_, _, err := b.Join(ctx, tg.code, "setup")
			require.NoError(t, err)
			tg.secret, err = b.IssueRejoin(ctx, a.id, tg.id)
			require.NoError(t, err)
		}
		switch state {
		case protocol.StatePaused:
			_, err = b.Pause(ctx, a.id, uid, tg.id, tg.fence)
		case protocol.StateTerminating:
			_, err = b.EndSessions(ctx, a.owner, []string{tg.id})
		case protocol.StateEnded:
			_, err = b.CloseSession(ctx, a.id, uid, "test", tg.id, tg.fence)
		}
		require.NoError(t, err)
		s, err := b.OwnSession(ctx, a.id, uid, tg.id)
		require.NoError(t, err)
		require.Equal(t, state, s.State)
		return tg
	}
	desk := func(name, acctID, uid, tok string) *wsActor {
		a := &wsActor{name: name, acct: acctID, uid: uid, tok: tok, c: wsDial(t, n.url, tok), held: map[string]bool{}}
		w := a.call(t, protocol.ClientMessage{Type: protocol.TypeHello, Version: protocol.Version, Role: protocol.RoleDesktop,
			DeviceID: "actor-" + name})
		require.Equal(t, protocol.TypeWelcome, w.Type, "%+v", w)
		// a session of its own: its notice is the marker that every event
		// before it was delivered
		g := a.call(t, protocol.ClientMessage{Type: protocol.TypeOpen})
		require.Equal(t, protocol.TypeGranted, g.Type, "%+v", g)
		a.held[g.Session.ID] = true
		return a
	}
	remote := func(name string, join string) *wsActor {
		a := &wsActor{name: name, remote: true, c: wsDial(t, n.url, ""), held: map[string]bool{}}
		w := a.call(t, protocol.ClientMessage{Type: protocol.TypeHello, Version: protocol.Version, Role: protocol.RoleRemote})
		require.Equal(t, protocol.TypeWelcome, w.Type, "%+v", w)
		if join != "" {
			j := a.call(t, protocol.ClientMessage{Type: protocol.TypeJoin, Code: join})
			require.Equal(t, protocol.TypeJoined, j.Type, "%+v", j)
			a.held[j.Session.ID], a.joined = true, true
		}
		return a
	}
	// s0: the session the joined remote actor takes part in
	s0 := mk(acct, acct.ann.UserID, protocol.StateStandby)
	actors := []*wsActor{
		desk("the session's own user, another connection", acct.id, acct.ann.UserID, acct.annTok),
		desk("another member (domain/domain)", acct.id, peer.UserID, peerTok),
		desk("an admin", acct.id, adm.UserID, admTok),
		desk("the owner", acct.id, acct.owner.UserID, acct.ownerTok),
		desk("a user of another account", other.id, other.owner.UserID, other.ownerTok),
		remote("a remote side of another session", s0.code),
		remote("a remote side of no session", ""),
	}
	s0.state = protocol.StateActive
	var err error
	s0.secret, err = b.IssueRejoin(ctx, acct.id, s0.id)
	require.NoError(t, err)

	// the sessions, made while the actors watch the account
	var targets []wsTarget
	for _, st := range []string{protocol.StateStandby, protocol.StateActive, protocol.StatePaused,
		protocol.StateTerminating, protocol.StateEnded} {
		tg := mk(acct, acct.ann.UserID, st)
		tg.label = "a member's " + st + " session"
		targets = append(targets, tg)
	}
	foreign := mk(other, other.ann.UserID, protocol.StateActive)
	foreign.label = "another account's active session"
	unknown := wsTarget{label: "an unknown id", id: uuid.NewString(), acct: acct.id, owner: "nobody", fence: "1",
		code: "000000000"}
	cells, disagreements := 0, 0
	check := func(cell string, want, got wsWant) {
		cells++
		if want != got {
			disagreements++
			t.Errorf("DISAGREES %s: want %+v, got %+v", cell, want, got)
		}
	}
	// probe sends one message naming t and returns the answer. A hello
	// goes on a new connection (one hello per connection); so does a
	// join that is to succeed, which must leave the actor as it is.
	probe := func(a *wsActor, op string, tg wsTarget, rightKey bool) wsWant {
		switch op {
		case "hello":
			c := &wsActor{name: a.name + " (reconnecting)", remote: a.remote, c: wsDial(t, n.url, a.tok)}
			ref := protocol.SessionRef{ID: tg.id, Fence: "wrong"}
			switch {
			case a.remote && rightKey && tg.secret != "":
				ref.Fence = tg.secret
			case a.remote && rightKey:
				ref.Fence = broker.RejoinPrefix + "never-issued"
			case a.remote:
				ref.Fence = s0.secret // a secret, of another session
			case rightKey:
				ref.Fence = tg.fence
			}
			hello := protocol.ClientMessage{Type: protocol.TypeHello, Version: protocol.Version, Role: protocol.RoleDesktop,
				DeviceID: "reconnect", Sessions: []protocol.SessionRef{ref}}
			if a.remote {
				hello.Role, hello.DeviceID = protocol.RoleRemote, ""
			}
			got := answer(c.call(t, hello))
			_ = c.c.Close()
			return got
		case "join":
			code := tg.code
			if !rightKey {
				code = "999999999"
			}
			if code == tg.code && tg.state == protocol.StateStandby && a.remote && !a.joined {
				c := &wsActor{name: a.name + " (joining)", remote: true, c: wsDial(t, n.url, "")}
				c.call(t, protocol.ClientMessage{Type: protocol.TypeHello, Version: protocol.Version, Role: protocol.RoleRemote})
				got := answer(c.call(t, protocol.ClientMessage{Type: protocol.TypeJoin, Code: code}))
				_ = c.c.Close()
				return got
			}
			return answer(a.call(t, protocol.ClientMessage{Type: protocol.TypeJoin, Code: code}))
		}
		return answer(a.call(t, protocol.ClientMessage{Type: op, SessionID: tg.id}))
	}
	for _, a := range actors {
		for _, tg := range append(append([]wsTarget{}, targets...), foreign, unknown) {
			for _, op := range []string{"pause", "resume", "close", "join", "hello"} {
				for _, right := range []bool{true, false} {
					if tg.state == protocol.StateStandby && op == "join" && right && a.remote && !a.joined {
						// the join takes the code: the next cells need
						// the session in standby again
						tg2 := mk(acct, acct.ann.UserID, protocol.StateStandby)
						tg2.label = tg.label
						tg = tg2
					}
					if (op == "pause" || op == "resume" || op == "close") && !right {
						continue // these carry no key
					}
					cell := fmt.Sprintf("%s / %s / %s (right key %v)", a.name, tg.label, op, right)
					want := wantFor(a, op, tg, right)
					got := probe(a, op, tg, right)
					if tg.id == unknown.id || tg.id == foreign.id && a.acct != other.id {
						// exactly as a session of its account that is
						// not its own (an active one), with a wrong key
						same := targets[1]
						if a.acct == other.id {
							same = foreign
						}
						// (but a remote side with its session's secret
						// is in it: a foreign id's own remote side)
						if !(op == "hello" && !a.remote && same.owner == a.uid) && want.code != "" {
							check(cell+" answers as one not its own", probe(a, op, same, false), got)
						}
					}
					check(cell, want, got)
				}
			}
		}
	}

	// the marker: the owner ends every actor's own session; each hears of
	// it after everything that came before, and of nothing else
	var mine []string
	for _, a := range actors {
		for id := range a.held {
			mine = append(mine, id)
		}
	}
	_, err = b.EndSessions(ctx, acct.owner, mine)
	require.NoError(t, err)
	_, err = b.EndSessions(ctx, other.owner, mine)
	require.NoError(t, err)
	for _, a := range actors {
		if len(a.held) == 0 {
			continue // watches no account: nothing can reach it
		}
		for {
			m := a.read(t)
			if m.Type == protocol.TypeNotice && a.held[m.SessionID] {
				break
			}
		}
		for _, m := range a.seen {
			id := m.SessionID
			if id == "" && m.Session != nil {
				id = m.Session.ID
			}
			if m.ID != "" || id == "" || a.held[id] {
				continue // a reply, or about its own session
			}
			cells++
			disagreements++
			raw, _ := json.Marshal(m)
			t.Errorf("DISAGREES %s heard of a session it does not take part in: %s", a.name, raw)
		}
	}

	// credentials that do not work get no connection to name a session
	// on: at the upgrade (a bearer token) or in the hello
	blocked, blockedTok := overrideDomain("blocked", protocol.RoleMember)
	_, err = b.BlockUser(ctx, acct.owner, blocked.UserID, true)
	require.NoError(t, err)
	revoked, err := b.IssueToken(ctx, acct.ann, time.Hour, "revoked")
	require.NoError(t, err)
	require.NoError(t, b.Revoke(ctx, acct.ann, revoked.Token))
	expired, err := b.IssueToken(ctx, acct.ann, time.Second, "expired")
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_, err := b.Authenticate(ctx, expired.Token, broker.TokenClient)
		return err != nil
	}, 5*time.Second, 10*time.Millisecond, "the short token expires")
	for _, c := range []struct {
		name, tok string
		status    int
		code      protocol.Code
	}{
		{"a blocked user", blockedTok, http.StatusForbidden, protocol.CodeUserBlocked},
		{"a revoked token", revoked.Token, http.StatusUnauthorized, protocol.CodeUnauthorized},
		{"an expired token", expired.Token, http.StatusUnauthorized, protocol.CodeUnauthorized},
		{"no credentials", "", http.StatusUnauthorized, protocol.CodeUnauthorized},
	} {
		if c.tok != "" {
			cells++
			_, resp, err := websocket.DefaultDialer.Dial(n.url, http.Header{"Authorization": {"Bearer " + c.tok}})
			require.Error(t, err, c.name)
			var eb protocol.ErrorBody
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&eb))
			_ = resp.Body.Close()
			if resp.StatusCode != c.status || eb.Error.Code != c.code {
				disagreements++
				t.Errorf("DISAGREES %s / upgrade: %d %s, want %d %s", c.name, resp.StatusCode, eb.Error.Code, c.status, c.code)
			}
		}
		cells++
		a := &wsActor{name: c.name, c: wsDial(t, n.url, "")}
		got := answer(a.call(t, protocol.ClientMessage{Type: protocol.TypeHello, Version: protocol.Version, Role: protocol.RoleDesktop,
			Token: c.tok, DeviceID: "dev", Sessions: []protocol.SessionRef{{ID: targets[1].id, Fence: targets[1].fence}}}))
		if got != wsErr(c.code) {
			disagreements++
			t.Errorf("DISAGREES %s / hello renewing a session: %+v, want %s", c.name, got, c.code)
		}
	}
	t.Logf("websocket visibility matrix: %d cells, %d disagreements", cells, disagreements)
}
