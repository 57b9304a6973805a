package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/seatbroker/seatbroker/broker"
	"github.com/seatbroker/seatbroker/broker/protocol"
)

// Timings of the page's event stream.
const (
	// keepalivePeriod: a comment line this often keeps proxies from
	// closing an idle stream.
	keepalivePeriod = 15 * time.Second
	// overviewEvery: at most one overview event this often, however many
	// changes come (they are coalesced into the next one).
	overviewEvery = 200 * time.Millisecond
)

// streamWriteWait bounds one write of the stream: a client that does not
// read it (its socket buffers full) is dropped after this, rather than
// holding the node's goroutine and socket for ever. Tests shorten it.
var streamWriteWait atomic.Int64 // a time.Duration; 0: 10 s

// SetStreamWriteWait sets how long one write of the event stream may
// block (default 10 s), for tests; it returns a func that restores it.
func SetStreamWriteWait(d time.Duration) (restore func()) {
	old := streamWriteWait.Swap(int64(d))
	return func() { streamWriteWait.Store(old) }
}

// hiddenEvent tells the page to drop a session it may no longer see.
type hiddenEvent struct {
	ID string `json:"id"`
}

// stream is one page's event stream: its writer and its viewer.
type stream struct {
	h      *api
	c      *gin.Context
	cl     caller
	p      broker.Principal
	ovDue  *time.Timer // fires when the next overview goes
	ovWait bool        // an overview is scheduled on ovDue
	ovLast time.Time   // when the last overview went
}

// events is GET /events: the account's changes as Server-Sent Events, as
// this viewer may see them, from whichever node made them, until the
// viewer's token expires or is revoked.
func (h *api) events(c *gin.Context) {
	ctx := c.Request.Context()
	cl := who(c)
	ch, cancel, err := h.b.Watch(ctx, cl.p.Account)
	if err != nil {
		fail(c, err)
		return
	}
	defer cancel()
	// the writes' deadline is not left behind for the connection's next request
	defer func() { _ = http.NewResponseController(c.Writer).SetWriteDeadline(time.Time{}) }()
	hd := c.Writer.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	c.Status(http.StatusOK)
	s := &stream{h: h, c: c, cl: cl, p: cl.p, ovDue: time.NewTimer(0), ovWait: true}
	defer s.ovDue.Stop()
	keep := time.NewTicker(keepalivePeriod)
	defer keep.Stop()
	// nothing else checks the token again unless the viewer changes: the
	// stream ends when it expires (the page then finds its cookie gone and
	// signs out)
	expired := time.NewTimer(h.b.Until(ctx, cl.p.Account, cl.expires))
	defer expired.Stop()
	if s.write(": connected\n\n") != nil {
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-expired.C:
			return
		case <-s.h.opts.Stopping:
			return // the node is stopping: the page comes back to another
		case <-s.ovDue.C:
			if s.sendOverview(ctx) != nil {
				return
			}
		case <-keep.C:
			if s.write(": keepalive\n\n") != nil {
				return
			}
		case ev, ok := <-ch:
			if !ok {
				return // the node is shutting down
			}
			if !s.handle(ctx, ev) {
				return
			}
		}
	}
}

// handle sends what ev means to this viewer; false ends the stream.
func (s *stream) handle(ctx context.Context, ev broker.Event) bool {
	switch ev.Type {
	case broker.EventSession:
		if ev.Session == nil {
			return true
		}
		ss := *ev.Session
		switch {
		case s.p.CanView(ss.UserID, ss.State):
			ss.CanControl = s.p.CanControl(ss.UserID, ss.State)
			if s.event("session", ss) != nil {
				return false
			}
		case s.p.CanView(ss.UserID, protocol.StateActive):
			// one it could see before (another user's, now paused)
			if s.event("session_hidden", hiddenEvent{ID: ss.ID}) != nil {
				return false
			}
		}
	case broker.EventUser, broker.EventTokens:
		// the viewer changed, or tokens of it were revoked (this one?)
		if ev.UserID == s.p.UserID && !s.reloadAndResync(ctx) {
			return false
		}
	case broker.EventAccount:
		// the account's permission defaults may have changed
		if !s.reloadAndResync(ctx) {
			return false
		}
	case broker.EventWarning:
		if s.p.IsAdmin() && ev.Warning != nil && s.event("warning", ev.Warning) != nil {
			return false
		}
	case broker.EventResync:
		if !s.reload(ctx) || s.event("resync", struct{}{}) != nil {
			return false
		}
	}
	s.overviewSoon()
	return true
}

// reload re-reads the viewer's permissions through its token: a blocked
// user, or a revoked token, ends the stream.
func (s *stream) reload(ctx context.Context) bool {
	kind := broker.TokenClient
	if s.cl.cookie {
		kind = broker.TokenWeb
	}
	p, err := s.h.b.Authenticate(ctx, s.cl.token, kind)
	if err != nil {
		return false
	}
	s.p = p
	return true
}

// reloadAndResync reloads the viewer's permissions and, when what it may
// see or control changed, sends resync: the page then fetches its lists
// again, so rows it may no longer see leave it, and those it may now see
// come (no event would bring either: they are filtered by the new
// permissions).
func (s *stream) reloadAndResync(ctx context.Context) bool {
	old := s.p
	if !s.reload(ctx) {
		return false
	}
	if s.p.View == old.View && s.p.Control == old.Control && s.p.Role == old.Role {
		return true
	}
	return s.event("resync", struct{}{}) == nil
}

// overviewSoon schedules an overview, at most one per overviewEvery.
func (s *stream) overviewSoon() {
	if s.ovWait {
		return // the scheduled one will carry this change too
	}
	s.ovWait = true
	s.ovDue.Reset(max(0, overviewEvery-time.Since(s.ovLast)))
}

func (s *stream) sendOverview(ctx context.Context) error {
	s.ovWait = false
	s.ovLast = time.Now()
	o, err := s.h.b.Overview(ctx, s.p)
	if err != nil {
		// Redis unreachable: the page shows that instead of numbers
		return s.event("overview", protocol.Overview{Account: s.p.Account, Degraded: true})
	}
	return s.event("overview", o)
}

func (s *stream) event(name string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.write(fmt.Sprintf("event: %s\ndata: %s\n\n", name, data))
}

// write sends msg now, with a deadline (streamWriteWait): a client that
// does not read is dropped instead of blocking the stream for ever.
func (s *stream) write(msg string) error {
	wait := time.Duration(streamWriteWait.Load())
	if wait <= 0 {
		wait = 10 * time.Second
	}
	rc := http.NewResponseController(s.c.Writer)
	if err := rc.SetWriteDeadline(time.Now().Add(wait)); err != nil {
		return err
	}
	if _, err := s.c.Writer.WriteString(msg); err != nil {
		return err
	}
	return rc.Flush()
}
