package ws_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seatbroker/seatbroker/broker"
	"github.com/seatbroker/seatbroker/broker/protocol"
	"github.com/seatbroker/seatbroker/broker/ws"
	"github.com/seatbroker/seatbroker/client"
	"github.com/seatbroker/seatbroker/internal/testredis"
)

// Revoking a user's tokens on one node closes, within a second, that
// user's websockets on every node with 1008; a client cannot come back
// with the revoked token (one that has the password signs in again), and
// other users' connections are left alone.
func TestRevokedTokensCloseTheirConnectionsOnEveryNode(t *testing.T) {
	t.Parallel()
	na, nb := twoNodes(t)
	acct := newAccount(t, na.b, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	byToken := dial(t, na.url, desktop(acct.annTok, "dev1"))
	byPassword := dial(t, nb.url, client.Options{Account: acct.id, Name: "ann", Password: acct.annPasswd, DeviceID: "dev2", MinBackoff: 20 * time.Millisecond})
	oldToken := byPassword.Token()
	owner := dial(t, na.url, desktop(acct.ownerTok, "dev3"))
	raw := rawDesktop(t, nb.url, acct.annTok, "dev4")
	_, err := byToken.Open(ctx)
	require.NoError(t, err)

	n, err := nb.b.RevokeUserTokens(ctx, acct.owner, acct.ann.UserID)
	require.NoError(t, err)
	require.Equal(t, 2, n) // the test's token and the one the password sign-in made

	waitFor[client.Disconnected](t, byToken.Events(), time.Second)
	stopped := waitFor[client.Stopped](t, byToken.Events(), 2*time.Second)
	assert.Equal(t, protocol.CodeUnauthorized, client.CodeOf(stopped.Err), "%v", stopped.Err)
	_, err = byToken.Open(ctx)
	assert.Equal(t, protocol.CodeUnauthorized, client.CodeOf(err), "%v", err)

	assert.Equal(t, websocket.ClosePolicyViolation, closeCode(t, raw, time.Second))

	waitFor[client.Disconnected](t, byPassword.Events(), time.Second)
	waitFor[client.Reconnected](t, byPassword.Events(), 2*time.Second)
	assert.NotEqual(t, oldToken, byPassword.Token(), "signed in again, with a new token")

	_, err = owner.Open(ctx)
	require.NoError(t, err, "another user's connection is not touched")
}

// Signing out (revoking one token) closes the connections of that token,
// not those of the same user's other tokens.
func TestSigningOutClosesOnlyThatTokensConnections(t *testing.T) {
	t.Parallel()
	na, nb := twoNodes(t)
	acct := newAccount(t, na.b, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	second, err := na.b.IssueToken(ctx, acct.ann, time.Hour, "laptop")
	require.NoError(t, err)

	out := dial(t, na.url, desktop(second.Token, "dev1"))
	stays := dial(t, na.url, desktop(acct.annTok, "dev2"))
	require.NoError(t, nb.b.Revoke(ctx, acct.ann, second.Token))

	waitFor[client.Disconnected](t, out.Events(), time.Second)
	_, err = out.Open(ctx)
	assert.Equal(t, protocol.CodeUnauthorized, client.CodeOf(err), "%v", err)
	_, err = stays.Open(ctx)
	require.NoError(t, err)
}

// A desktop connection closes with 1008 when the token it signed in with
// expires, whether the token came at the upgrade or in the hello: the
// token is not checked again otherwise, and the connection would keep
// taking seats for as long as it lasts. Not before: until then it works.
// A client that has the password signs in again; one with only the token
// stops.
func TestADesktopConnectionClosesWhenItsTokenExpires(t *testing.T) {
	t.Parallel()
	n := startNode(t, redisClient(t), fastConfig(testredis.Prefix(t)), ws.Options{})
	acct := newAccount(t, n.b, 5)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	short := func() broker.IssuedToken {
		t.Helper()
		tok, err := n.b.IssueToken(ctx, acct.ann, 2*time.Second, "short")
		require.NoError(t, err)
		return tok
	}
	upgrade, hello := short(), short()
	raws := []struct {
		name    string
		expires time.Time
		c       *websocket.Conn
	}{
		{"token at the upgrade", upgrade.Expires, rawDesktop(t, n.url, upgrade.Token, "dev1")},
		{"token in the hello", hello.Expires, rawHello(t, n.url, protocol.ClientMessage{Type: protocol.TypeHello,
			Version: protocol.Version, Role: protocol.RoleDesktop, DeviceID: "dev2", Token: hello.Token})},
	}
	byToken, withPassword := short(), short()
	tokenOnly := dial(t, n.url, desktop(byToken.Token, "dev3"))
	opts := desktop(withPassword.Token, "dev4")
	opts.Account, opts.Name, opts.Password = acct.id, "ann", acct.annPasswd
	signsInAgain := dial(t, n.url, opts)
	for _, r := range raws {
		require.NoError(t, r.c.WriteJSON(protocol.ClientMessage{Type: protocol.TypeOpen, ID: "o"}))
		var m protocol.ServerMessage
		require.NoError(t, r.c.ReadJSON(&m))
		require.Equal(t, protocol.TypeGranted, m.Type, "%s: %+v", r.name, m)
	}

	for _, r := range raws {
		ce := closeFrame(t, r.c, n.b.Until(context.Background(), acct.id, r.expires)+time.Second)
		assert.Equal(t, websocket.ClosePolicyViolation, ce.Code, r.name)
		assert.Equal(t, "unauthorized: the token expired", ce.Text, r.name)
		// the broker's clock is measured once a second: a little slack
		now := n.b.Now(context.Background(), acct.id)
		assert.False(t, now.Before(r.expires.Add(-100*time.Millisecond)),
			"%s: closed at %v, before the token expired at %v", r.name, now, r.expires)
	}
	waitFor[client.Disconnected](t, tokenOnly.Events(), n.b.Until(context.Background(), acct.id, byToken.Expires)+time.Second)
	stopped := waitFor[client.Stopped](t, tokenOnly.Events(), 2*time.Second)
	assert.Equal(t, protocol.CodeUnauthorized, client.CodeOf(stopped.Err), "%v", stopped.Err)
	waitFor[client.Disconnected](t, signsInAgain.Events(), time.Second)
	waitFor[client.Reconnected](t, signsInAgain.Events(), 2*time.Second)
	assert.NotEqual(t, withPassword.Token, signsInAgain.Token(), "signed in again, with a new token")
	_, err := signsInAgain.Open(ctx)
	require.NoError(t, err)
}

// rawHello dials url and says hello, which must be welcomed.
func rawHello(t *testing.T, url string, hello protocol.ClientMessage) *websocket.Conn {
	t.Helper()
	c, resp, err := websocket.DefaultDialer.Dial(url, nil)
	require.NoError(t, err)
	_ = resp.Body.Close()
	t.Cleanup(func() { _ = c.Close() })
	require.NoError(t, c.WriteJSON(hello))
	var m protocol.ServerMessage
	require.NoError(t, c.ReadJSON(&m))
	require.Equal(t, protocol.TypeWelcome, m.Type, "%+v", m)
	return c
}

// rawDesktop is a desktop connection without the client library, signed
// in with the upgrade's bearer token, past its welcome.
func rawDesktop(t *testing.T, url, tok, device string) *websocket.Conn {
	t.Helper()
	c, resp, err := websocket.DefaultDialer.Dial(url, http.Header{"Authorization": {"Bearer " + tok}})
	require.NoError(t, err)
	_ = resp.Body.Close()
	t.Cleanup(func() { _ = c.Close() })
	require.NoError(t, c.WriteJSON(protocol.ClientMessage{Type: protocol.TypeHello, Version: protocol.Version, Role: protocol.RoleDesktop, DeviceID: device}))
	var m protocol.ServerMessage
	require.NoError(t, c.ReadJSON(&m))
	require.Equal(t, protocol.TypeWelcome, m.Type)
	return c
}

// closeCode reads c until the server closes it and returns the close code.
func closeCode(t *testing.T, c *websocket.Conn, within time.Duration) int {
	t.Helper()
	return closeFrame(t, c, within).Code
}

// closeFrame reads c until the server closes it and returns its close
// frame (code and reason).
func closeFrame(t *testing.T, c *websocket.Conn, within time.Duration) *websocket.CloseError {
	t.Helper()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(within)))
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			var ce *websocket.CloseError
			require.True(t, errors.As(err, &ce), "not closed by the server within %v: %v", within, err)
			return ce
		}
	}
}

// A new password revokes the user's other tokens, announced like any
// revocation: within a second the connections signed in with them close
// on every node with 1008, and a client that signed in with the old
// password cannot sign in again; the token the user set the password with
// keeps its connection.
func TestPasswordChangeClosesTheUsersOtherConnections(t *testing.T) {
	t.Parallel()
	na, nb := twoNodes(t)
	acct := newAccount(t, na.b, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	own, err := na.b.IssueToken(ctx, acct.ann, time.Hour, "the page")
	require.NoError(t, err)

	raw := rawDesktop(t, nb.url, acct.annTok, "dev1")
	byPassword := dial(t, nb.url, client.Options{Account: acct.id, Name: "ann", Password: acct.annPasswd, DeviceID: "dev2", MinBackoff: 20 * time.Millisecond})
	stays := dial(t, na.url, desktop(own.Token, "dev3"))

	require.NoError(t, na.b.SetPassword(ctx, acct.ann, acct.ann.UserID, "ann-new-password", own.Token))

	assert.Equal(t, websocket.ClosePolicyViolation, closeCode(t, raw, time.Second))
	waitFor[client.Disconnected](t, byPassword.Events(), time.Second)
	stopped := waitFor[client.Stopped](t, byPassword.Events(), 2*time.Second)
	assert.Equal(t, protocol.CodeUnauthorized, client.CodeOf(stopped.Err), "the old password signs in no more: %v", stopped.Err)
	_, err = stays.Open(ctx)
	require.NoError(t, err, "the connection of the token that set the password stays")
}
