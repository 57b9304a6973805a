package ws_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seatbroker/seatbroker/broker/protocol"
	"github.com/seatbroker/seatbroker/broker/ws"
	"github.com/seatbroker/seatbroker/client"
	"github.com/seatbroker/seatbroker/internal/testredis"
)

// raw is a websocket connection without the client library, to send what
// a correct client never would.
type raw struct {
	c *websocket.Conn
}

func rawDial(t *testing.T, url, token string) *raw {
	t.Helper()
	h := http.Header{}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	c, resp, err := websocket.DefaultDialer.Dial(url, h)
	require.NoError(t, err)
	_ = resp.Body.Close()
	t.Cleanup(func() { _ = c.Close() })
	return &raw{c: c}
}

func (r *raw) sendText(t *testing.T, s string) {
	t.Helper()
	require.NoError(t, r.c.WriteMessage(websocket.TextMessage, []byte(s)))
}

func (r *raw) send(t *testing.T, m protocol.ClientMessage) {
	t.Helper()
	data, err := json.Marshal(m)
	require.NoError(t, err)
	r.sendText(t, string(data))
}

// next reads the next message that is not a heartbeat_ack or session
// update.
func (r *raw) next(t *testing.T) protocol.ServerMessage {
	t.Helper()
	require.NoError(t, r.c.SetReadDeadline(time.Now().Add(2*time.Second)))
	_, data, err := r.c.ReadMessage()
	require.NoError(t, err)
	m, err := protocol.DecodeServer(data)
	require.NoError(t, err)
	return m
}

func (r *raw) hello(t *testing.T, m protocol.ClientMessage) protocol.ServerMessage {
	t.Helper()
	m.Type, m.ID, m.Version = protocol.TypeHello, "h", protocol.Version
	r.send(t, m)
	w := r.next(t)
	require.Equal(t, protocol.TypeWelcome, w.Type, "%+v", w.Error)
	return w
}

func requireError(t *testing.T, m protocol.ServerMessage, id string, code protocol.Code, field string) {
	t.Helper()
	require.Equal(t, protocol.TypeError, m.Type)
	require.NotNil(t, m.Error)
	assert.Equal(t, id, m.ID)
	assert.Equal(t, code, m.Error.Code)
	assert.Equal(t, field, m.Error.Field)
	assert.NotEmpty(t, m.Error.Message)
}

func TestBadMessagesGetTheDocumentedErrorAndChangeNothing(t *testing.T) {
	t.Parallel()
	n := startNode(t, redisClient(t), fastConfig(testredis.Prefix(t)), ws.Options{})
	acct := newAccount(t, n.b, 2)
	ctx := context.Background()
	d := dial(t, n.url, desktop(acct.annTok, "dev1"))
	g, err := d.Open(ctx, client.WithCode())
	require.NoError(t, err)
	before, _, err := n.b.Sessions(ctx, acct.owner, brokerAll())
	require.NoError(t, err)

	r := rawDial(t, n.url, "")
	r.send(t, protocol.ClientMessage{Type: protocol.TypeOpen, ID: "1"})
	requireError(t, r.next(t), "1", protocol.CodeInvalidRequest, "type") // before hello
	r.sendText(t, `{"type":"hello",`)
	requireError(t, r.next(t), "", protocol.CodeInvalidRequest, "") // malformed JSON
	r.sendText(t, `[1,2]`)
	requireError(t, r.next(t), "", protocol.CodeInvalidRequest, "")
	r.sendText(t, `{"type":"teleport","id":"2"}`)
	requireError(t, r.next(t), "2", protocol.CodeInvalidRequest, "type") // unknown type
	r.sendText(t, `{"type":"hello","id":"3","version":"seatbroker.v0","role":"desktop"}`)
	requireError(t, r.next(t), "3", protocol.CodeInvalidRequest, "version")
	r.sendText(t, `{"type":"hello","id":"4","version":"seatbroker.v1","role":"desktop","device_id":"x","token":"sbt_nope"}`)
	requireError(t, r.next(t), "4", protocol.CodeUnauthorized, "")

	// a remote side with a wrong code
	r.hello(t, protocol.ClientMessage{Role: protocol.RoleRemote})
	r.send(t, protocol.ClientMessage{Type: protocol.TypeJoin, ID: "5", Code: "000000000"})
	requireError(t, r.next(t), "5", protocol.CodeNotFound, "")
	r.send(t, protocol.ClientMessage{Type: protocol.TypeClose, ID: "6", SessionID: g.Session.ID})
	requireError(t, r.next(t), "6", protocol.CodeNotFound, "") // not its session
	r.send(t, protocol.ClientMessage{Type: protocol.TypeOpen, ID: "7"})
	requireError(t, r.next(t), "7", protocol.CodeForbidden, "type")

	// a desktop side with a stale fencing token
	r2 := rawDial(t, n.url, acct.annTok)
	w := r2.hello(t, protocol.ClientMessage{Role: protocol.RoleDesktop, DeviceID: "dev1",
		Sessions: []protocol.SessionRef{{ID: g.Session.ID, Fence: g.Fence + "0"}}})
	require.Len(t, w.Sessions, 1)
	require.NotNil(t, w.Sessions[0].Error)
	assert.Equal(t, protocol.CodeForbidden, w.Sessions[0].Error.Code)
	r2.send(t, protocol.ClientMessage{Type: protocol.TypePause, ID: "8", SessionID: g.Session.ID})
	requireError(t, r2.next(t), "8", protocol.CodeNotFound, "") // never attached

	after, _, err := n.b.Sessions(ctx, acct.owner, brokerAll())
	require.NoError(t, err)
	assert.Equal(t, len(before), len(after))
	assert.Equal(t, protocol.StateStandby, sessionOf(t, n.b, acct.owner, g.Session.ID).State)
	assert.Equal(t, []protocol.SessionRef{{ID: g.Session.ID, Fence: g.Fence}}, d.Sessions())
	assert.Equal(t, int64(1), inUse(t, n.b, acct.id))

	// the code still works for the right customer
	rc := dial(t, n.url, client.Options{Role: client.RoleRemote})
	_, err = rc.Join(ctx, g.Session.Code)
	require.NoError(t, err)
}

func TestOversizedFrameClosesTheConnectionWith1009(t *testing.T) {
	t.Parallel()
	n := startNode(t, redisClient(t), fastConfig(testredis.Prefix(t)), ws.Options{})
	acct := newAccount(t, n.b, 2)
	r := rawDial(t, n.url, acct.annTok)
	r.hello(t, protocol.ClientMessage{Role: protocol.RoleDesktop, DeviceID: "dev1"})
	big := `{"type":"heartbeat","id":"` + strings.Repeat("x", protocol.MaxFrame) + `"}`
	r.sendText(t, big)
	require.NoError(t, r.c.SetReadDeadline(time.Now().Add(2*time.Second)))
	_, _, err := r.c.ReadMessage()
	var ce *websocket.CloseError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, websocket.CloseMessageTooBig, ce.Code)
	require.Eventually(t, func() bool { return n.ws.Conns() == 0 }, time.Second, 10*time.Millisecond)
	assert.Equal(t, int64(0), inUse(t, n.b, acct.id))
}

func TestUpgradeRefusesABadTokenAndAForeignOrigin(t *testing.T) {
	t.Parallel()
	n := startNode(t, redisClient(t), fastConfig(testredis.Prefix(t)), ws.Options{AllowedOrigins: []string{"https://console.example"}})
	acct := newAccount(t, n.b, 2)

	h := http.Header{"Authorization": {"Bearer sbt_wrong"}}
	_, resp, err := websocket.DefaultDialer.Dial(n.url, h)
	require.Error(t, err)
	require.NotNil(t, resp)
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	var body protocol.ErrorBody
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	_ = resp.Body.Close()
	assert.Equal(t, protocol.CodeUnauthorized, body.Error.Code)

	h = http.Header{"Authorization": {"Bearer " + acct.annTok}, "Origin": {"https://evil.example"}}
	_, resp, err = websocket.DefaultDialer.Dial(n.url, h)
	require.Error(t, err)
	require.NotNil(t, resp)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)

	for _, origin := range []string{"https://console.example", "http://" + n.http.Listener.Addr().String()} {
		h = http.Header{"Origin": {origin}}
		c, resp, err := websocket.DefaultDialer.Dial(n.url, h)
		require.NoError(t, err, origin)
		_ = resp.Body.Close()
		_ = c.Close()
	}
}

func TestHelloWithPasswordSignsInAndReturnsAToken(t *testing.T) {
	t.Parallel()
	n := startNode(t, redisClient(t), fastConfig(testredis.Prefix(t)), ws.Options{})
	acct := newAccount(t, n.b, 2)
	d := dial(t, n.url, client.Options{Account: acct.id, Name: "ann", Password: acct.annPasswd, DeviceID: "dev1"})
	assert.Equal(t, "ann", d.User().Name)
	assert.Equal(t, acct.id, d.User().Account)
	p, err := n.b.Authenticate(context.Background(), d.Token(), "client")
	require.NoError(t, err)
	assert.Equal(t, acct.ann.UserID, p.UserID)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = client.Dial(ctx, n.url, client.Options{Account: acct.id, Name: "ann", Password: "wrong-password", DeviceID: "dev1"})
	assert.Equal(t, protocol.CodeUnauthorized, client.CodeOf(err))
}

// TestAFrameThatIsNotUTF8AnswersWithAnEmptyID: docs/protocol.md, Errors:
// "malformed JSON, not an object, two values, not UTF-8 -> error, code
// invalid_request, no field, empty id". A frame that is not UTF-8 but
// carries an id gets that id echoed.
func TestAFrameThatIsNotUTF8AnswersWithAnEmptyID(t *testing.T) {
	t.Parallel()
	n := startNode(t, redisClient(t), fastConfig(testredis.Prefix(t)), ws.Options{})
	r := rawDial(t, n.url, "")
	r.sendText(t, "{\"type\":\"heartbeat\",\"id\":\"9\",\"x\":\"\xff\"}")
	requireError(t, r.next(t), "", protocol.CodeInvalidRequest, "")
}
