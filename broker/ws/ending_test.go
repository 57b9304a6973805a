package ws_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seatbroker/seatbroker/broker/protocol"
	"github.com/seatbroker/seatbroker/broker/ws"
	"github.com/seatbroker/seatbroker/client"
	"github.com/seatbroker/seatbroker/internal/testredis"
)

// twoNodes starts two broker nodes on one Redis with one prefix.
func twoNodes(t *testing.T) (a, b *node) {
	t.Helper()
	rc := redisClient(t)
	cfg := fastConfig(testredis.Prefix(t))
	return startNode(t, rc, cfg, ws.Options{}), startNode(t, rc, cfg, ws.Options{})
}

// joinedSession opens a session with a code from a desktop client on dn
// and joins it from a remote client on rn.
func joinedSession(t *testing.T, dn, rn *node, tok string) (*client.Client, *client.Client, string) {
	t.Helper()
	ctx := context.Background()
	d := dial(t, dn.url, desktop(tok, "dev1"))
	g, err := d.Open(ctx, client.WithCode())
	require.NoError(t, err)
	require.Equal(t, protocol.StateStandby, g.Session.State)
	require.NotEmpty(t, g.Session.Code)
	r := dial(t, rn.url, client.Options{Role: client.RoleRemote, Name: "customer"})
	s, err := r.Join(ctx, g.Session.Code)
	require.NoError(t, err)
	require.Equal(t, g.Session.ID, s.ID)
	require.Equal(t, protocol.StateActive, s.State)
	changed := waitFor[client.SessionChanged](t, d.Events(), time.Second)
	require.Equal(t, protocol.StateActive, changed.Session.State)
	return d, r, g.Session.ID
}

func TestEndingNoticeReachesBothSidesOnEitherNodeWithinOneSecond(t *testing.T) {
	t.Parallel()
	na, nb := twoNodes(t)
	acct := newAccount(t, na.b, 2)
	d, r, sid := joinedSession(t, nb, na, acct.annTok)

	res, err := na.b.EndSessions(context.Background(), acct.owner, []string{sid})
	require.NoError(t, err)
	require.True(t, res[0].OK, "%+v", res[0].Error)

	dn := waitFor[client.Notice](t, d.Events(), time.Second)
	rn := waitFor[client.Notice](t, r.Events(), time.Second)
	for _, n := range []client.Notice{dn, rn} {
		assert.Equal(t, sid, n.SessionID)
		assert.Equal(t, protocol.ReasonTerminated, n.Reason)
		assert.Equal(t, "owner", n.EndedBy)
		assert.Greater(t, n.Left, time.Duration(0))
		assert.LessOrEqual(t, n.Left, 750*time.Millisecond) // the notice, give or take the clock estimate
		assert.LessOrEqual(t, n.Remaining(), n.Left)
	}
	assert.Equal(t, dn.Deadline, rn.Deadline)

	de := waitFor[client.Ended](t, d.Events(), 3*time.Second)
	re := waitFor[client.Ended](t, r.Events(), 3*time.Second)
	assert.Equal(t, protocol.ReasonTerminated, de.Reason)
	assert.Equal(t, protocol.ReasonTerminated, re.Reason)
	assert.Empty(t, d.Sessions(), "the desktop client forgets the ended session")
	assert.Equal(t, int64(0), inUse(t, nb.b, acct.id))

	// the remote side's connection existed for that session only: it ends
	waitFor[client.Disconnected](t, r.Events(), time.Second)
	require.Eventually(t, func() bool { return na.ws.Conns() == 0 }, time.Second, 10*time.Millisecond)
}

func TestSessionEndsAtDeadlineWhenRequestingNodeDiesRightAfter(t *testing.T) {
	t.Parallel()
	na, nb := twoNodes(t)
	acct := newAccount(t, na.b, 2)
	d, _, sid := joinedSession(t, nb, na, acct.annTok)

	res, err := na.b.EndSessions(context.Background(), acct.owner, []string{sid})
	require.NoError(t, err)
	require.True(t, res[0].OK)
	na.stop()
	deadline := *res[0].Session.Deadline

	n := waitFor[client.Notice](t, d.Events(), time.Second)
	assert.Equal(t, deadline, n.Deadline)
	e := waitFor[client.Ended](t, d.Events(), 3*time.Second)
	arrived := nb.b.Now(context.Background(), acct.id) // the Redis clock, as node B measures it
	assert.Equal(t, protocol.ReasonTerminated, e.Reason)
	assert.True(t, arrived.Before(deadline.Add(time.Second)),
		"ended %v after the deadline", arrived.Sub(deadline))
	assert.Equal(t, int64(0), inUse(t, nb.b, acct.id))
}

func TestParticipantMayCloseDuringTheNotice(t *testing.T) {
	t.Parallel()
	na, nb := twoNodes(t)
	acct := newAccount(t, na.b, 2)
	d, r, sid := joinedSession(t, na, nb, acct.annTok)
	ctx := context.Background()

	_, err := na.b.EndSessions(ctx, acct.owner, []string{sid})
	require.NoError(t, err)
	waitFor[client.Notice](t, r.Events(), time.Second)
	s, err := r.CloseSession(ctx, sid)
	require.NoError(t, err)
	assert.Equal(t, protocol.StateEnded, s.State)
	assert.Equal(t, protocol.ReasonClosed, s.Reason)

	e := waitFor[client.Ended](t, d.Events(), time.Second)
	assert.Equal(t, protocol.ReasonClosed, e.Reason)
	assert.Equal(t, int64(0), inUse(t, na.b, acct.id))
}

func TestPauseFreesTheSeatAndResumeTakesItWithANewFence(t *testing.T) {
	t.Parallel()
	n := startNode(t, redisClient(t), fastConfig(testredis.Prefix(t)), ws.Options{})
	acct := newAccount(t, n.b, 1)
	ctx := context.Background()
	d := dial(t, n.url, desktop(acct.annTok, "dev1"))
	g, err := d.Open(ctx)
	require.NoError(t, err)
	assert.Equal(t, protocol.StateActive, g.Session.State)
	assert.Equal(t, protocol.KindPrepaid, g.Session.Kind)
	waitFor[client.Granted](t, d.Events(), time.Second)
	assert.Equal(t, int64(1), inUse(t, n.b, acct.id))

	p, err := d.Pause(ctx, g.Session.ID)
	require.NoError(t, err)
	assert.Equal(t, protocol.StatePaused, p.State)
	assert.Equal(t, int64(0), inUse(t, n.b, acct.id))

	// the seat is free for someone else meanwhile, so resume is denied
	o := dial(t, n.url, desktop(acct.ownerTok, "dev9"))
	og, err := o.Open(ctx)
	require.NoError(t, err)
	_, err = d.Resume(ctx, g.Session.ID)
	var ce *client.Error
	require.ErrorAs(t, err, &ce)
	assert.True(t, ce.Denied)
	assert.Equal(t, protocol.CodeAccountLimit, ce.Code())
	assert.NotEmpty(t, ce.Detail.PageURL)
	denied := waitFor[client.Denied](t, d.Events(), time.Second)
	assert.Equal(t, protocol.CodeAccountLimit, denied.Error.Code)

	_, err = o.CloseSession(ctx, og.Session.ID)
	require.NoError(t, err)
	rg, err := d.Resume(ctx, g.Session.ID)
	require.NoError(t, err)
	assert.Equal(t, protocol.StateActive, rg.Session.State)
	assert.NotEqual(t, g.Fence, rg.Fence)
	assert.Equal(t, []protocol.SessionRef{{ID: g.Session.ID, Fence: rg.Fence}}, d.Sessions())
	assert.Equal(t, int64(1), inUse(t, n.b, acct.id))
}

func TestDeniedOpenCarriesCodePageAndOwnSessions(t *testing.T) {
	t.Parallel()
	n := startNode(t, redisClient(t), fastConfig(testredis.Prefix(t)), ws.Options{})
	acct := newAccount(t, n.b, 1)
	ctx := context.Background()
	d := dial(t, n.url, desktop(acct.annTok, "dev1"))
	_, err := d.Open(ctx)
	require.NoError(t, err)
	other := dial(t, n.url, desktop(acct.annTok, "dev2"))
	_, err = other.Open(ctx)
	var ce *client.Error
	require.ErrorAs(t, err, &ce)
	assert.True(t, ce.Denied)
	assert.Equal(t, protocol.CodeAccountLimit, ce.Code())
	assert.Equal(t, n.http.URL+"/#usage", ce.Detail.PageURL, "the page on the address the client reached: a person can open it")
	require.Len(t, ce.Detail.Own, 1, "the user's own session it may end")
	assert.Empty(t, other.Sessions())
	assert.Equal(t, int64(1), inUse(t, n.b, acct.id))
}
