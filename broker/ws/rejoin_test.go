package ws_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seatbroker/seatbroker/broker/protocol"
	"github.com/seatbroker/seatbroker/client"
)

// A remote side whose connection is cut comes back to its session with
// the rejoin secret its join gave it (the code was single use), and still
// gets the ending notice.
func TestRemoteSideComesBackToItsSessionAfterALostConnection(t *testing.T) {
	t.Parallel()
	na, nb, acct, d, ctx := codeSessions(t)
	g, err := d.Open(ctx, client.WithCode())
	require.NoError(t, err)
	px := startProxy(t, strings.TrimPrefix(nb.http.URL, "http://"))
	r := dial(t, px.url(), client.Options{Role: client.RoleRemote, Name: "customer", MinBackoff: 20 * time.Millisecond})
	_, err = r.Join(ctx, g.Session.Code)
	require.NoError(t, err)
	refs := r.Sessions()
	require.Len(t, refs, 1)
	assert.True(t, strings.HasPrefix(refs[0].Fence, "sbr_"), "the join gives a rejoin secret")

	px.cut()
	waitFor[client.Disconnected](t, r.Events(), time.Second)
	back := waitFor[client.Reconnected](t, r.Events(), 3*time.Second)
	require.Len(t, back.Sessions, 1)
	assert.Equal(t, g.Session.ID, back.Sessions[0].ID)

	res, err := na.b.EndSessions(ctx, acct.owner, []string{g.Session.ID})
	require.NoError(t, err)
	require.True(t, res[0].OK)
	n := waitFor[client.Notice](t, r.Events(), time.Second)
	assert.Equal(t, g.Session.ID, n.SessionID)
	waitFor[client.Ended](t, r.Events(), 3*time.Second)
	// its session over, the remote side stops rather than come back
	waitFor[client.Stopped](t, r.Events(), 2*time.Second)
}

// A rejoin secret opens only its own session, and nothing once that
// session has ended (the remote side is told how it ended).
func TestRejoinTakesOnlyItsOwnLiveSession(t *testing.T) {
	t.Parallel()
	na, nb, _, d, ctx := codeSessions(t)
	g1, err := d.Open(ctx, client.WithCode())
	require.NoError(t, err)
	g2, err := d.Open(ctx, client.WithCode())
	require.NoError(t, err)
	r := dial(t, nb.url, client.Options{Role: client.RoleRemote})
	_, err = r.Join(ctx, g1.Session.Code)
	require.NoError(t, err)
	secret := r.Sessions()[0].Fence

	for _, ref := range []protocol.SessionRef{
		{ID: g2.Session.ID, Fence: secret},      // another session
		{ID: g1.Session.ID, Fence: "sbr_wrong"}, // a wrong secret
		{ID: g1.Session.ID, Fence: ""},          // none
	} {
		st := rawRejoin(t, na.url, ref)
		require.NotNil(t, st.Error, "%+v", ref)
		assert.Equal(t, protocol.CodeNotFound, st.Error.Code)
	}
	st := rawRejoin(t, na.url, protocol.SessionRef{ID: g1.Session.ID, Fence: secret})
	require.Nil(t, st.Error)
	require.NotNil(t, st.Session)
	assert.Equal(t, protocol.StateActive, st.Session.State)

	_, err = d.CloseSession(ctx, g1.Session.ID)
	require.NoError(t, err)
	st = rawRejoin(t, na.url, protocol.SessionRef{ID: g1.Session.ID, Fence: secret})
	require.NotNil(t, st.Session)
	assert.Equal(t, protocol.StateEnded, st.Session.State)
}

// codeSessions is two nodes, an account, and ann's desktop client on the
// first node, ready to open sessions with codes.
func codeSessions(t *testing.T) (na, nb *node, acct account, d *client.Client, ctx context.Context) {
	t.Helper()
	na, nb = twoNodes(t)
	acct = newAccount(t, na.b, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return na, nb, acct, dial(t, na.url, desktop(acct.annTok, "dev1")), ctx
}

// rawRejoin says hello as a remote side coming back with ref and returns
// the welcome's status of it.
func rawRejoin(t *testing.T, url string, ref protocol.SessionRef) protocol.SessionStatus {
	t.Helper()
	c, resp, err := websocket.DefaultDialer.Dial(url, http.Header{})
	require.NoError(t, err)
	_ = resp.Body.Close()
	defer c.Close()
	require.NoError(t, c.WriteJSON(protocol.ClientMessage{Type: protocol.TypeHello, Version: protocol.Version,
		Role: protocol.RoleRemote, Sessions: []protocol.SessionRef{ref}}))
	var m protocol.ServerMessage
	require.NoError(t, c.ReadJSON(&m))
	require.Equal(t, protocol.TypeWelcome, m.Type, "%+v", m)
	require.Len(t, m.Sessions, 1)
	return m.Sessions[0]
}
