package broker_test

// Review 1: the tests of the review that another engineer takes on. Each
// fails on the code as reviewed.

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seatbroker/seatbroker/broker"
	"github.com/seatbroker/seatbroker/broker/protocol"
	"github.com/seatbroker/seatbroker/client"
)

// SPEC.md, Pay-per-use: low-balance warnings go to the desktop clients of
// PPU sessions. The client whose new PPU session's first minute crosses
// the threshold holds a PPU session when the warning is published, but
// ws/handlers.go attaches the session to the connection only after Open
// returns, and onWarning (ws/conn.go) looks only at attached sessions: the
// warning, published by the same script, usually arrives first and is
// dropped. Tried 5 times (a race; it is lost most times).
func TestReview1BugOpenerOfPPUSessionThatCrossesThresholdIsNotWarned(t *testing.T) {
	f := onRedis(t, setup{seats: 0, ppu: true, cfg: func(c *broker.Config) {
		c.LowBalance = []int{60}
		c.Minute = time.Hour
		c.Lease = 10 * time.Second
		c.Heartbeat = 5 * time.Second
	}})
	f.topUp(61)
	ann := f.user("ann", nil)
	tok, err := f.b.IssueToken(f.ctx, ann, time.Hour, "test")
	require.NoError(t, err)
	d := wsDial(t, wsNode(t, f), client.Options{Token: tok.Token, DeviceID: "d1", NoReconnect: true})
	missed := 0
	for range 5 {
		g, err := d.Open(f.ctx) // PPU: its first minute leaves 60
		require.NoError(t, err)
		require.Equal(t, protocol.KindPPU, g.Session.Kind)
		require.Equal(t, int64(60), f.overview().PPUBalance)
		timer := time.NewTimer(time.Second)
	wait:
		for {
			select {
			case e := <-d.Events():
				if w, ok := e.(client.Warning); ok && w.Threshold == 60 {
					break wait
				}
			case <-timer.C:
				missed++
				break wait
			}
		}
		timer.Stop()
		_, err = d.CloseSession(f.ctx, g.Session.ID)
		require.NoError(t, err)
		f.topUp(1) // 61 again
	}
	assert.Zero(t, missed, "the client of the PPU session that crossed 60 minutes got no warning (of 5 tries)")
}

// SPEC.md, Pause and resume: "A paused session is visible to its own user
// only: nobody else sees it, or can act on it, until it is resumed." The
// remote side of a paused session (not its user) still acts on it: its
// close ends the paused session.
func TestReview1BugRemoteSideActsOnPausedSession(t *testing.T) {
	f := onRedis(t, setup{seats: 2, cfg: func(c *broker.Config) {
		c.Heartbeat = 5 * time.Second
		c.Lease = 10 * time.Second
		c.Paused = 30 * time.Second
	}})
	ann := f.user("ann", nil)
	tok, err := f.b.IssueToken(f.ctx, ann, time.Hour, "test")
	require.NoError(t, err)
	url := wsNode(t, f)
	d := wsDial(t, url, client.Options{Token: tok.Token, DeviceID: "d1", NoReconnect: true})
	g, err := d.Open(f.ctx, client.WithCode())
	require.NoError(t, err)
	r := wsDial(t, url, client.Options{Role: client.RoleRemote, NoReconnect: true})
	_, err = r.Join(f.ctx, g.Session.Code)
	require.NoError(t, err)
	_, err = d.Pause(f.ctx, g.Session.ID)
	require.NoError(t, err)
	_, _ = r.CloseSession(f.ctx, g.Session.ID)
	s, err := f.b.OwnSession(f.ctx, f.acct, ann.UserID, g.Session.ID)
	require.NoError(t, err)
	assert.Equal(t, protocol.StatePaused, s.State, "nobody but its user acts on a paused session")
}
