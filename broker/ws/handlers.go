package ws

import (
	"context"
	"errors"
	"time"

	"github.com/gorilla/websocket"

	"github.com/seatbroker/seatbroker/broker"
	"github.com/seatbroker/seatbroker/broker/protocol"
)

// handle runs one request on the reader's goroutine: requests of one
// connection run in order, one at a time.
func (c *conn) handle(m protocol.ClientMessage) {
	if !c.hello && m.Type != protocol.TypeHello {
		c.fail(m.ID, protocol.ErrorDetail{Code: protocol.CodeInvalidRequest, Message: "send hello first", Field: "type"})
		return
	}
	ctx, cancel := context.WithTimeout(c.ctx, requestTimeout)
	defer cancel()
	switch m.Type {
	case protocol.TypeHello:
		c.onHello(ctx, m)
	case protocol.TypeOpen:
		c.onOpen(ctx, m)
	case protocol.TypeJoin:
		c.onJoin(ctx, m)
	case protocol.TypeHeartbeat:
		c.onHeartbeat(ctx, m)
	case protocol.TypePause:
		c.onPause(ctx, m)
	case protocol.TypeResume:
		c.onResume(ctx, m)
	case protocol.TypeClose:
		c.onClose(ctx, m)
	}
}

func (c *conn) fail(id string, d protocol.ErrorDetail) {
	c.enqueue(errorMsg(id, d))
}

func (c *conn) failErr(id string, err error) {
	c.fail(id, c.s.errDetail(err))
}

func (c *conn) timing() (hb, lease int64) {
	cfg := c.s.b.Config()
	return cfg.Heartbeat.Milliseconds(), cfg.Lease.Milliseconds()
}

func (c *conn) onHello(ctx context.Context, m protocol.ClientMessage) {
	if c.hello {
		c.fail(m.ID, protocol.ErrorDetail{Code: protocol.CodeInvalidRequest, Message: "hello was sent already", Field: "type"})
		return
	}
	hb, lease := c.timing()
	reply := protocol.ServerMessage{Type: protocol.TypeWelcome, ID: m.ID, Version: protocol.Version, Role: m.Role,
		HeartbeatMS: hb, LeaseMS: lease}
	if m.Role == protocol.RoleRemote {
		c.helloRemote(ctx, m, reply)
		return
	}
	if m.DeviceID == "" {
		c.fail(m.ID, protocol.ErrorDetail{Code: protocol.CodeInvalidRequest, Message: "a desktop client names its device", Field: "device_id"})
		return
	}
	p, expires, err := c.authenticate(ctx, m, &reply)
	if err != nil {
		c.failErr(m.ID, err)
		return
	}
	// set before watchAccount indexes c: from there they are only read
	c.token, c.tokenUser = c.preToken, p.UserID
	switch {
	case reply.Token != "":
		c.token = reply.Token
	case m.Token != "" && c.pre == nil:
		c.token = m.Token
	}
	if err := c.s.watchAccount(ctx, c, p.Account); err != nil {
		c.failErr(m.ID, err)
		return
	}
	c.role, c.principal, c.acct, c.by, c.hello = protocol.RoleDesktop, p, p.Account, p.Name, true
	c.deviceID, c.deviceName = m.DeviceID, m.DeviceName
	reply.User = &protocol.Identity{Account: p.Account, UserID: p.UserID, Name: p.Name, Role: p.Role}
	if len(m.Sessions) > 0 {
		// a reconnect: the same sessions on the same seat, if the lease
		// has not run out and the tokens are still theirs
		refs := make([]broker.SessionRef, len(m.Sessions))
		for i, r := range m.Sessions {
			refs[i] = broker.SessionRef{ID: r.ID, Fence: r.Fence}
		}
		res, err := c.s.b.Renew(ctx, p.Account, p.UserID, refs)
		if err != nil {
			c.failErr(m.ID, err)
			c.hello = false
			return
		}
		for i, r := range res {
			reply.Sessions = append(reply.Sessions, c.renewed(r, m.Sessions[i].Fence))
		}
	}
	c.expireAt(expires)
	c.enqueue(reply)
}

// helloRemote greets a remote side. It is authorized by the code it joins
// with, or, coming back after a lost connection, by the rejoin secret its
// join gave it: sessions [{id, fence: the secret}], one session per
// connection.
func (c *conn) helloRemote(ctx context.Context, m protocol.ClientMessage, reply protocol.ServerMessage) {
	c.role, c.by = protocol.RoleRemote, "remote"
	if m.Name != "" {
		c.by = m.Name
	}
	var back *protocol.Session
	for i, ref := range m.Sessions {
		st := protocol.SessionStatus{ID: ref.ID}
		if i == 0 {
			sess, acct, err := c.s.b.Rejoin(ctx, ref.ID, ref.Fence)
			switch {
			case err == nil && sess.State == protocol.StateEnded:
				// it ended while the remote side was away: say how
				st.Session = &sess
				reply.Sessions = append(reply.Sessions, st)
				continue
			case err == nil:
				if err := c.s.watchAccount(ctx, c, acct); err != nil {
					c.failErr(m.ID, err)
					return
				}
				c.acct, back = acct, &sess
				st.Session = &sess
				st.Notice = c.s.notice(ctx, acct, sess)
				reply.Sessions = append(reply.Sessions, st)
				continue
			case !isNotFound(err):
				c.failErr(m.ID, err)
				return
			}
		}
		d, _ := broker.ErrorDetail(broker.ErrNotFound)
		st.Error = &d
		reply.Sessions = append(reply.Sessions, st)
	}
	c.hello = true
	c.enqueue(reply)
	if back != nil {
		c.attach(back.ID, &attached{owner: back.UserID, state: back.State, kind: back.Kind})
		// an end between the rejoin and the watch would otherwise wait for
		// the next heartbeat
		c.s.goRefresh(c)
	}
}

// authenticate finds the desktop client's user, and when the token it
// signed in with expires: from the upgrade's bearer token, the hello's
// token, or a sign-in with the hello's password (whose token the welcome
// returns, for reconnects).
func (c *conn) authenticate(ctx context.Context, m protocol.ClientMessage, reply *protocol.ServerMessage) (broker.Principal, time.Time, error) {
	switch {
	case c.pre != nil:
		return *c.pre, c.preExpires, nil
	case m.Token != "":
		return c.s.b.AuthenticateUntil(ctx, m.Token, broker.TokenClient)
	case m.Password != "":
		tok, err := c.s.b.SignIn(ctx, broker.Credentials{Account: m.Account, Name: m.Name, Password: m.Password},
			c.source, broker.TokenClient, 0)
		if err != nil {
			return broker.Principal{}, time.Time{}, err
		}
		exp := tok.Expires
		reply.Token, reply.TokenExpires = tok.Token, &exp
		return tok.Principal, exp, nil
	}
	return broker.Principal{}, time.Time{}, broker.ErrUnauthorized
}

// renewed turns one renewal into its status, attaching or detaching the
// session.
func (c *conn) renewed(r broker.RenewResult, fence string) protocol.SessionStatus {
	st := protocol.SessionStatus{ID: r.ID}
	if r.Err != nil {
		d := c.s.errDetail(r.Err)
		st.Error = &d
		c.detach(r.ID)
		return st
	}
	sess := r.Session
	st.Session = &sess
	if sess.State == protocol.StateEnded {
		c.detach(r.ID)
		return st
	}
	st.Fence = fence
	st.Notice = c.s.notice(c.ctx, c.acct, sess)
	c.mu.Lock()
	cur := c.sessions[r.ID]
	if cur != nil {
		cur.state, cur.kind = sess.State, sess.Kind
		if st.Notice != nil {
			cur.notice = st.Notice.Deadline
		}
	}
	c.mu.Unlock()
	if cur != nil {
		return st
	}
	a := &attached{owner: c.principal.UserID, fence: fence, state: sess.State, kind: sess.Kind}
	if st.Notice != nil {
		a.notice = st.Notice.Deadline
	}
	c.attach(r.ID, a)
	return st
}

func (c *conn) desktopOnly(id string) bool {
	if c.role != protocol.RoleDesktop {
		c.fail(id, protocol.ErrorDetail{Code: protocol.CodeForbidden, Message: "only a desktop client may do this", Field: "type"})
		return false
	}
	return true
}

func (c *conn) onOpen(ctx context.Context, m protocol.ClientMessage) {
	if !c.desktopOnly(m.ID) {
		return
	}
	c.mu.Lock()
	n := len(c.sessions)
	c.mu.Unlock()
	if n >= maxConnSessions {
		c.fail(m.ID, protocol.ErrorDetail{Code: protocol.CodeInvalidRequest, Message: "too many sessions on one connection", Field: "type"})
		return
	}
	c.grantBegin()
	g, err := c.s.b.Open(ctx, broker.OpenRequest{Account: c.acct, UserID: c.principal.UserID,
		DeviceID: c.deviceID, DeviceName: c.deviceName, WithCode: m.WithCode})
	if err != nil {
		c.grantEnd(nil)
		c.refused(m.ID, err)
		return
	}
	c.granted(m.ID, g)
	c.attach(g.Session.ID, &attached{owner: c.principal.UserID, fence: g.Fence, state: g.Session.State, kind: g.Session.Kind})
	c.grantEnd(&g)
}

// refused answers a refused grant: denied (with the page and the user's
// own sessions) for the seat rules, error for anything else.
func (c *conn) refused(id string, err error) {
	var de *broker.DeniedError
	if errors.As(err, &de) {
		d := c.s.errDetail(err)
		if d.PageURL != "" {
			d.PageURL = c.pageURL // absolute on the address the client reached
		}
		c.enqueue(protocol.ServerMessage{Type: protocol.TypeDenied, ID: id, Error: &d})
		return
	}
	c.failErr(id, err)
}

func (c *conn) granted(id string, g protocol.Grant) {
	hb, lease := c.timing()
	sess := g.Session
	c.enqueue(protocol.ServerMessage{Type: protocol.TypeGranted, ID: id, Session: &sess, Fence: g.Fence,
		HeartbeatMS: hb, LeaseMS: lease})
}

func (c *conn) onJoin(ctx context.Context, m protocol.ClientMessage) {
	if c.role != protocol.RoleRemote {
		c.fail(m.ID, protocol.ErrorDetail{Code: protocol.CodeForbidden, Message: "only a remote client joins by code", Field: "type"})
		return
	}
	c.mu.Lock()
	n := len(c.sessions)
	c.mu.Unlock()
	if n > 0 || c.acct != "" {
		c.fail(m.ID, protocol.ErrorDetail{Code: protocol.CodeInvalidRequest, Message: "a remote connection joins one session", Field: "type"})
		return
	}
	sess, acct, err := c.s.b.Join(ctx, m.Code, c.source)
	if err != nil {
		c.failErr(m.ID, err)
		return
	}
	if err := c.s.watchAccount(ctx, c, acct); err != nil {
		c.failErr(m.ID, err)
		return
	}
	c.acct = acct
	// the secret to come back with if the connection is lost; without it
	// (Redis failed just now) the join still stands
	rejoin, err := c.s.b.IssueRejoin(ctx, acct, sess.ID)
	if err != nil {
		c.s.log.Warn("no rejoin secret for a remote side", "session", sess.ID, "err", err)
	}
	hb, lease := c.timing()
	c.enqueue(protocol.ServerMessage{Type: protocol.TypeJoined, ID: m.ID, Session: &sess, Fence: rejoin,
		HeartbeatMS: hb, LeaseMS: lease})
	c.attach(sess.ID, &attached{owner: sess.UserID, state: sess.State, kind: sess.Kind})
	// an end between the join and the watch would otherwise wait for the
	// next heartbeat
	c.s.goRefresh(c)
}

func (c *conn) onHeartbeat(ctx context.Context, m protocol.ClientMessage) {
	hb, lease := c.timing()
	reply := protocol.ServerMessage{Type: protocol.TypeAck, ID: m.ID, HeartbeatMS: hb, LeaseMS: lease,
		Sessions: []protocol.SessionStatus{}}
	c.mu.Lock()
	type held struct{ id, owner, fence string }
	var hs []held
	for sid, a := range c.sessions {
		hs = append(hs, held{sid, a.owner, a.fence})
	}
	c.mu.Unlock()
	if c.role == protocol.RoleDesktop {
		if len(hs) > 0 {
			refs := make([]broker.SessionRef, len(hs))
			for i, h := range hs {
				refs[i] = broker.SessionRef{ID: h.id, Fence: h.fence}
			}
			res, err := c.s.b.Renew(ctx, c.acct, c.principal.UserID, refs)
			if err != nil {
				c.failErr(m.ID, err)
				return
			}
			for i, r := range res {
				reply.Sessions = append(reply.Sessions, c.renewed(r, hs[i].fence))
			}
		}
		c.enqueue(reply)
		return
	}
	// a remote side renews nothing; its heartbeat reads its session, so a
	// notice lost on the way still reaches it
	for _, h := range hs {
		st := protocol.SessionStatus{ID: h.id}
		sess, err := c.s.b.OwnSession(ctx, c.acct, h.owner, h.id)
		switch {
		case err == nil:
			st.Session = &sess
			st.Notice = c.s.notice(ctx, c.acct, sess)
		case isNotFound(err):
			d := c.s.errDetail(err)
			st.Error = &d
		default:
			c.failErr(m.ID, err)
			return
		}
		reply.Sessions = append(reply.Sessions, st)
	}
	c.enqueue(reply)
	for _, st := range reply.Sessions {
		if st.Session != nil && st.Session.State == protocol.StateEnded || st.Error != nil {
			c.detach(st.ID)
			c.stop(websocket.CloseNormalClosure, "session ended")
		}
	}
}

func isNotFound(err error) bool { return errors.Is(err, broker.ErrNotFound) }

// session returns the attached session named by the message, or answers
// not_found.
func (c *conn) session(m protocol.ClientMessage) (attached, bool) {
	a, ok := c.attachedCopy(m.SessionID)
	if !ok {
		c.failErr(m.ID, broker.ErrNotFound)
	}
	return a, ok
}

func (c *conn) onPause(ctx context.Context, m protocol.ClientMessage) {
	if !c.desktopOnly(m.ID) {
		return
	}
	a, ok := c.session(m)
	if !ok {
		return
	}
	// with the token this connection holds the session by: a holder whose
	// grant was replaced is refused (forbidden), and its next heartbeat
	// tells it so
	sess, err := c.s.b.Pause(ctx, c.acct, c.principal.UserID, m.SessionID, a.fence)
	if err != nil {
		c.failErr(m.ID, err)
		return
	}
	c.setState(sess)
	c.enqueue(protocol.ServerMessage{Type: protocol.TypePaused, ID: m.ID, SessionID: sess.ID, Session: &sess})
}

func (c *conn) onResume(ctx context.Context, m protocol.ClientMessage) {
	if !c.desktopOnly(m.ID) {
		return
	}
	if _, ok := c.session(m); !ok {
		return
	}
	c.grantBegin()
	g, err := c.s.b.Resume(ctx, c.acct, c.principal.UserID, m.SessionID)
	if err != nil {
		c.grantEnd(nil)
		c.refused(m.ID, err)
		return
	}
	c.mu.Lock()
	if a := c.sessions[m.SessionID]; a != nil {
		a.fence = g.Fence
	}
	c.mu.Unlock()
	c.setState(g.Session)
	c.granted(m.ID, g)
	c.grantEnd(&g)
}

func (c *conn) setState(s protocol.Session) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if a := c.sessions[s.ID]; a != nil {
		a.state, a.kind = s.State, s.Kind
	}
}

func (c *conn) onClose(ctx context.Context, m protocol.ClientMessage) {
	a, ok := c.session(m)
	if !ok {
		return
	}
	// the desktop side closes as its user with the token it holds the
	// session by (a holder whose grant was replaced is refused, like its
	// heartbeat); the remote side with neither
	uid, fence := "", ""
	if c.role == protocol.RoleDesktop {
		uid, fence = c.principal.UserID, a.fence
	}
	// detached first, so that the ended event of this close, which may
	// come before the broker call returns, does not answer in its place
	c.detach(m.SessionID)
	sess, err := c.s.b.CloseSession(ctx, c.acct, uid, c.by, m.SessionID, fence)
	if err != nil {
		c.attach(m.SessionID, &a)
		c.failErr(m.ID, err)
		return
	}
	c.ended(protocol.ServerMessage{Type: protocol.TypeEnded, ID: m.ID, SessionID: sess.ID, Reason: sess.Reason, Session: &sess})
}
