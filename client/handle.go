package client

import (
	"strconv"
	"strings"
	"time"

	"github.com/seatbroker/seatbroker/broker/protocol"
)

func (c *Client) setAckSink(ch chan struct{}) {
	c.mu.Lock()
	c.ackSink = ch
	c.mu.Unlock()
}

// handle applies one server message to the client's state, turns it into
// events, and hands a reply to the request waiting for it.
func (c *Client) handle(m protocol.ServerMessage) {
	switch m.Type {
	case protocol.TypeGranted:
		if m.Session != nil {
			c.hold(m.Session.ID, m.Fence, m.Session.State)
			c.events.push(Granted{Session: *m.Session, Fence: m.Fence, Lease: time.Duration(m.LeaseMS) * time.Millisecond})
		}
	case protocol.TypeDenied:
		c.events.push(Denied{Error: detailOf(m)})
	case protocol.TypeJoined:
		if m.Session != nil {
			// a remote side's fence is its rejoin secret
			c.hold(m.Session.ID, m.Fence, m.Session.State)
			c.events.push(Joined{Session: *m.Session})
		}
	case protocol.TypePaused, protocol.TypeSession:
		if m.Session != nil {
			c.changed(*m.Session)
		}
	case protocol.TypeNotice:
		if m.Notice != nil {
			c.notice(*m.Notice)
		}
	case protocol.TypeEnded:
		c.ended(m.SessionID, m.Reason, m.Session)
	case protocol.TypeAck:
		c.statuses(m.Sessions)
		c.mu.Lock()
		sink := c.ackSink
		c.mu.Unlock()
		if sink != nil {
			select {
			case sink <- struct{}{}:
			default:
			}
		}
	case protocol.TypeWarning:
		if m.Warning != nil {
			c.events.push(Warning{Warning: *m.Warning})
		}
	case protocol.TypeError:
		// an error that answers a request which gave up (its ctx ended)
		// is dropped: the request returned already, and a refusal changed
		// nothing; only one that answers nothing the client sent is told
		if !c.reply(m) && m.ID != "hb" && !c.asked(m.ID) {
			c.events.push(ServerError{Error: detailOf(m)})
		}
		return
	}
	c.reply(m)
}

// reply hands m to the request waiting for it, if any.
func (c *Client) reply(m protocol.ServerMessage) bool {
	if m.ID == "" {
		return false
	}
	c.mu.Lock()
	ch, ok := c.pending[m.ID]
	delete(c.pending, m.ID)
	c.mu.Unlock()
	if ok {
		ch <- m // buffered, one reply per request
	}
	return ok
}

// asked says whether id is a request id this client sent: request gives
// each request a new "r<n>", n counting up from 1.
func (c *Client) asked(id string) bool {
	digits, ok := strings.CutPrefix(id, "r")
	n, err := strconv.ParseUint(digits, 10, 64)
	if !ok || err != nil || n == 0 || "r"+strconv.FormatUint(n, 10) != id {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return n <= c.nextID
}

func (c *Client) hold(id, fence, state string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if k := c.sessions[id]; k != nil {
		k.fence, k.state = fence, state
		return
	}
	c.sessions[id] = &known{fence: fence, state: state}
}

// changed records a session's new state and tells it once.
func (c *Client) changed(s protocol.Session) {
	c.mu.Lock()
	k := c.sessions[s.ID]
	fresh := k != nil && k.state != s.State
	if k != nil {
		k.state = s.State
	}
	c.mu.Unlock()
	if fresh {
		c.events.push(SessionChanged{Session: s})
	}
}

// notice passes an ending notice on once per deadline (it comes by
// pub/sub and again in heartbeat replies).
func (c *Client) notice(n protocol.Notice) {
	c.mu.Lock()
	k := c.sessions[n.SessionID]
	fresh := k != nil && !k.notice.Equal(n.Deadline)
	if fresh {
		k.notice, k.state = n.Deadline, protocol.StateTerminating
	}
	c.mu.Unlock()
	if fresh {
		c.events.push(Notice{SessionID: n.SessionID, Deadline: n.Deadline, Left: time.Duration(n.MSLeft) * time.Millisecond,
			Reason: n.Reason, EndedBy: n.EndedBy, received: time.Now()})
	}
}

// ended forgets a session and tells it once.
func (c *Client) ended(id, reason string, s *protocol.Session) {
	c.mu.Lock()
	_, ok := c.sessions[id]
	delete(c.sessions, id)
	c.mu.Unlock()
	if ok {
		c.events.push(Ended{SessionID: id, Reason: reason, Session: s})
	}
}

// statuses applies the session states of a welcome or heartbeat_ack.
func (c *Client) statuses(ss []protocol.SessionStatus) {
	for _, st := range ss {
		switch {
		case st.Error != nil:
			c.mu.Lock()
			_, ok := c.sessions[st.ID]
			delete(c.sessions, st.ID)
			c.mu.Unlock()
			if ok {
				c.events.push(Lost{SessionID: st.ID, Error: *st.Error})
			}
		case st.Session == nil:
		case st.Session.State == protocol.StateEnded:
			c.ended(st.ID, st.Session.Reason, st.Session)
		case st.Notice != nil:
			c.notice(*st.Notice)
		default:
			c.changed(*st.Session)
		}
	}
}
