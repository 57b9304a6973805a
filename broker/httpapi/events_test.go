package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/seatbroker/seatbroker/broker"
	"github.com/seatbroker/seatbroker/broker/httpapi"
	"github.com/seatbroker/seatbroker/broker/protocol"
	"github.com/seatbroker/seatbroker/broker/server"
)

// sse is one received Server-Sent Event.
type sse struct {
	name string
	data string
}

// openStream reads GET /events with headers until ctx ends; events arrive
// on the channel, which closes when the stream does.
func (e *env) openStream(ctx context.Context, headers ...string) <-chan sse {
	e.t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.srv.URL+"/api/v1/events", nil)
	require.NoError(e.t, err)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := e.hc.Do(req)
	require.NoError(e.t, err)
	e.checkAnswer(http.MethodGet, "/api/v1/events", reply{status: resp.StatusCode, header: resp.Header})
	require.Equal(e.t, http.StatusOK, resp.StatusCode)
	require.Equal(e.t, "text/event-stream", resp.Header.Get("Content-Type"))
	out := make(chan sse, 256)
	go func() {
		defer close(out)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		var ev sse
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				ev.name = line[len("event: "):]
			case strings.HasPrefix(line, "data: "):
				ev.data = line[len("data: "):]
			case line == "" && ev.name != "":
				select {
				case out <- ev:
				case <-ctx.Done():
					return
				}
				ev = sse{}
			}
		}
	}()
	return out
}

// next waits for the first event that match accepts, up to within.
func next(t *testing.T, ch <-chan sse, within time.Duration, match func(sse) bool) sse {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case ev, ok := <-ch:
			require.True(t, ok, "the stream ended")
			if match(ev) {
				return ev
			}
		case <-deadline:
			t.Fatalf("no matching event within %v", within)
		}
	}
}

func sessionEvent(id, state string) func(sse) bool {
	return func(ev sse) bool {
		if ev.name != "session" {
			return false
		}
		var s protocol.Session
		return json.Unmarshal([]byte(ev.data), &s) == nil && s.ID == id && s.State == state
	}
}

// TestEventsReachThePageFromAnotherNode: a change made on a second broker
// node sharing the Redis reaches this node's stream within a second, as
// the viewer may see it; a session that becomes invisible (another user's,
// paused) is hidden; blocking the viewer closes the stream. Nothing leaks
// when the stream ends.
func TestEventsReachThePageFromAnotherNode(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	// a subtest, so that its cleanups (brokers, server) run before the check
	t.Run("stream", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		e := newEnv(t, server.Options{})
		cfg := broker.DefaultConfig()
		cfg.Prefix = e.prefix
		node2 := startBroker(t, e.rc, cfg)
		a := e.account(5, false)
		viewer := a.user("viewer", protocol.RoleMember)
		q := a.user("q", protocol.RoleMember)
		ck, _ := e.webSession(a.id, "viewer")
		events := e.openStream(ctx, "Cookie", cookieHeader(ck))
		next(t, events, time.Second, func(ev sse) bool { return ev.name == "overview" })

		g, err := node2.Open(ctx, broker.OpenRequest{Account: a.id, UserID: q.ID, DeviceID: "d"})
		require.NoError(t, err)
		ev := next(t, events, time.Second, sessionEvent(g.Session.ID, protocol.StateActive))
		var s protocol.Session
		require.NoError(t, json.Unmarshal([]byte(ev.data), &s))
		assert.False(t, s.CanControl, "members default to control own: another user's session is not theirs to end")
		ov := next(t, events, time.Second, func(ev sse) bool { return ev.name == "overview" && strings.Contains(ev.data, `"in_use":1`) })
		assert.Contains(t, ov.data, `"seats":5`)

		_, err = node2.Pause(ctx, a.id, q.ID, g.Session.ID, g.Fence)
		require.NoError(t, err)
		ev = next(t, events, time.Second, func(ev sse) bool { return ev.name == "session_hidden" || ev.name == "session" })
		assert.Equal(t, "session_hidden", ev.name, "another user's paused session is invisible: %s", ev.data)
		assert.JSONEq(t, `{"id":"`+g.Session.ID+`"}`, ev.data)

		// the viewer's own session shows with can_control
		own, err := node2.Open(ctx, broker.OpenRequest{Account: a.id, UserID: viewer.ID, DeviceID: "v"})
		require.NoError(t, err)
		ev = next(t, events, time.Second, sessionEvent(own.Session.ID, protocol.StateActive))
		assert.Contains(t, ev.data, `"can_control":true`)

		// blocked: the stream ends
		_, err = node2.BlockUser(ctx, a.op, viewer.ID, true)
		require.NoError(t, err)
		closed := time.After(time.Second)
		for open := true; open; {
			select {
			case _, open = <-events:
			case <-closed:
				t.Fatal("the blocked viewer's stream is still open")
			}
		}
	})
}

// TestWarningsGoOnlyToAdmins: a low-balance warning reaches an admin's
// stream and not a member's.
func TestWarningsGoOnlyToAdmins(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e := newEnv(t, server.Options{})
	a := e.account(0, true)
	m := a.user("m", protocol.RoleMember)
	mTok := e.signIn(a.id, "m")
	admin := e.openStream(ctx, "Authorization", "Bearer "+a.token)
	member := e.openStream(ctx, "Authorization", "Bearer "+mTok)
	next(t, admin, time.Second, func(ev sse) bool { return ev.name == "overview" })
	next(t, member, time.Second, func(ev sse) bool { return ev.name == "overview" })
	// 11 minutes, then a PPU session is billed down through the threshold of 10
	_, err := e.b.TopUp(ctx, a.op, 11, "", "")
	require.NoError(t, err)
	_, err = e.b.Open(ctx, broker.OpenRequest{Account: a.id, UserID: m.ID, DeviceID: "d"})
	require.NoError(t, err)
	w := next(t, admin, 3*time.Second, func(ev sse) bool { return ev.name == "warning" })
	assert.Contains(t, w.data, `"threshold":10`)
	// the member got the session and overview events, but no warning
	next(t, member, time.Second, func(ev sse) bool { return ev.name == "session" })
	for {
		select {
		case ev := <-member:
			assert.NotEqual(t, "warning", ev.name)
			continue
		default:
		}
		break
	}
}

// TestRevokingTheViewersTokensEndsItsStream: "sign out everywhere" on
// another node ends the page's live stream within a second; another
// viewer's stream stays open.
func TestRevokingTheViewersTokensEndsItsStream(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e := newEnv(t, server.Options{})
	cfg := broker.DefaultConfig()
	cfg.Prefix = e.prefix
	node2 := startBroker(t, e.rc, cfg)
	a := e.account(5, false)
	viewer := a.user("viewer", protocol.RoleMember)
	a.user("other", protocol.RoleMember)
	ck, _ := e.webSession(a.id, "viewer")
	events := e.openStream(ctx, "Cookie", cookieHeader(ck))
	next(t, events, time.Second, func(ev sse) bool { return ev.name == "overview" })
	ck2, _ := e.webSession(a.id, "other")
	others := e.openStream(ctx, "Cookie", cookieHeader(ck2))
	next(t, others, time.Second, func(ev sse) bool { return ev.name == "overview" })

	n, err := node2.RevokeUserTokens(ctx, a.op, viewer.ID)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	closed := time.After(time.Second)
	for open := true; open; {
		select {
		case _, open = <-events:
		case <-closed:
			t.Fatal("the signed-out viewer's stream is still open")
		}
	}
	// the other viewer still gets events
	g, err := node2.Open(ctx, broker.OpenRequest{Account: a.id, UserID: viewer.ID, DeviceID: "d"})
	require.NoError(t, err)
	next(t, others, time.Second, func(ev sse) bool { return ev.name == "session" && strings.Contains(ev.data, g.Session.ID) })
}

// TestAStreamEndsWhenItsTokenExpires: the stream checks its token again
// only when the viewer changes, so it ends by itself when the token
// expires, the page's cookie and a program's bearer token alike: at the
// expiry, not before. The page then finds its cookie expired and signs
// out.
func TestAStreamEndsWhenItsTokenExpires(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e := newEnv(t, server.Options{})
	a := e.account(3, false)
	type stream struct {
		name    string
		expires time.Time
		events  <-chan sse
	}
	var web struct {
		Expires time.Time `json:"expires"`
	}
	r := e.mustDo(http.MethodPost, "/api/v1/auth/signin", "", map[string]any{
		"account": a.id, "name": "owner", "password": password, "ttl_sec": 2}, &web)
	var cookie string
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		if c.Name == httpapi.CookieName {
			cookie = cookieHeader(c)
		}
	}
	require.NotEmpty(t, cookie)
	var cli struct {
		Token   string    `json:"token"`
		Expires time.Time `json:"expires"`
	}
	e.mustDo(http.MethodPost, "/api/v1/auth/signin", "", map[string]any{
		"account": a.id, "name": "owner", "password": password, "kind": "client", "ttl_sec": 2}, &cli)
	streams := []stream{
		{"cookie", web.Expires, e.openStream(ctx, "Cookie", cookie)},
		{"bearer", cli.Expires, e.openStream(ctx, "Authorization", "Bearer "+cli.Token)},
	}
	for _, s := range streams {
		next(t, s.events, time.Second, func(ev sse) bool { return ev.name == "overview" })
	}

	for _, s := range streams {
		ended := time.After(e.b.Until(ctx, a.id, s.expires) + time.Second)
		for open := true; open; {
			select {
			case _, open = <-s.events:
			case <-ended:
				t.Fatalf("%s: the stream of a token that expired at %v is still open", s.name, s.expires)
			}
		}
		// the broker's clock is measured once a second: a little slack
		now := e.b.Now(ctx, a.id)
		assert.False(t, now.Before(s.expires.Add(-100*time.Millisecond)),
			"%s: the stream ended at %v, before its token expired at %v", s.name, now, s.expires)
	}
	for _, path := range []string{"/api/v1/me", "/api/v1/events"} {
		r := e.request(http.MethodGet, path, "", nil, "Cookie", cookie)
		assert.Equal(t, http.StatusUnauthorized, r.status, "%s with the expired cookie", path)
	}
}
