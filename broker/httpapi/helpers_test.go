package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/seatbroker/seatbroker/broker"
	"github.com/seatbroker/seatbroker/broker/protocol"
	"github.com/seatbroker/seatbroker/broker/server"
	"github.com/seatbroker/seatbroker/internal/brokertest"
	"github.com/seatbroker/seatbroker/internal/testredis"
)

func TestMain(m *testing.M) {
	broker.SetBcryptCost(bcrypt.MinCost)
	broker.SetMinTokenTTL(time.Second) // to watch tokens expire
	testredis.Main(m)
}

const password = "correct-horse-battery"

// startBroker runs a broker node on client until the test ends.
func startBroker(t *testing.T, client redis.UniversalClient, cfg broker.Config) *broker.Broker {
	t.Helper()
	return brokertest.Start(t, client, cfg)
}

// env is one broker node serving the whole HTTP handler on loopback, on
// its own key prefix.
type env struct {
	t      *testing.T
	b      *broker.Broker
	rc     *redis.Client
	prefix string
	srv    *httptest.Server
	hc     *http.Client
	ctx    context.Context

	answers *answerLog // the operations and statuses answered (checkAnswer)
}

func newEnv(t *testing.T, opts server.Options) *env {
	t.Helper()
	return newEnvWith(t, opts, nil)
}

// newEnvWith is newEnv with the broker's config changed by tweak.
func newEnvWith(t *testing.T, opts server.Options, tweak func(*broker.Config)) *env {
	t.Helper()
	rc := testredis.Client(t)
	cfg := broker.DefaultConfig()
	cfg.Prefix = testredis.Prefix(t)
	if tweak != nil {
		tweak(&cfg)
	}
	b := startBroker(t, rc, cfg)
	srv := httptest.NewServer(server.New(b, opts))
	tr := &http.Transport{}
	t.Cleanup(func() { srv.Close(); tr.CloseIdleConnections() })
	return &env{t: t, b: b, rc: rc, prefix: cfg.Prefix, srv: srv, hc: &http.Client{Transport: tr}, ctx: context.Background(),
		answers: &answerLog{seen: map[string]bool{}}}
}

// account is an account made for a test, with its owner signed in.
type account struct {
	e     *env
	id    string
	owner protocol.User
	op    broker.Principal
	token string // the owner's client token
}

func (e *env) account(seats int64, ppu bool) *account {
	e.t.Helper()
	id := "a" + uuid.NewString()[:8]
	owner, err := e.b.Bootstrap(e.ctx, broker.AccountSpec{ID: id, Seats: seats, PPUEnabled: ppu, OwnerName: "owner"}, password)
	require.NoError(e.t, err)
	p, err := e.b.PrincipalFor(e.ctx, id, owner.ID)
	require.NoError(e.t, err)
	a := &account{e: e, id: id, owner: owner, op: p}
	a.token = e.signIn(id, "owner")
	return a
}

// user adds a user with the password and returns it.
func (a *account) user(name, role string) protocol.User {
	a.e.t.Helper()
	u, err := a.e.b.AddUser(a.e.ctx, a.op, broker.UserSpec{Name: name, Role: role})
	require.NoError(a.e.t, err)
	require.NoError(a.e.t, a.e.b.SetPassword(a.e.ctx, a.op, u.ID, password, ""))
	return u
}

// open opens an active session of uid on device.
func (a *account) open(uid, device string) protocol.Session {
	a.e.t.Helper()
	g, err := a.e.b.Open(a.e.ctx, broker.OpenRequest{Account: a.id, UserID: uid, DeviceID: device})
	require.NoError(a.e.t, err)
	return g.Session
}

// openPaused opens a session of uid and pauses it.
func (a *account) openPaused(uid, device string) protocol.Session {
	a.e.t.Helper()
	s := a.open(uid, device)
	s, err := a.e.b.Pause(a.e.ctx, a.id, uid, s.ID, "")
	require.NoError(a.e.t, err)
	return s
}

// signIn signs in with a client token over the API.
func (e *env) signIn(acct, name string) string {
	e.t.Helper()
	var out struct{ Token string }
	e.mustDo(http.MethodPost, "/api/v1/auth/signin", "", map[string]string{
		"account": acct, "name": name, "password": password, "kind": "client"}, &out)
	require.NotEmpty(e.t, out.Token)
	return out.Token
}

// reply is an HTTP answer.
type reply struct {
	status int
	header http.Header
	body   []byte
}

// errCode returns the code of an error shape, failing if it is not one.
func (r reply) errCode(t *testing.T) protocol.Code {
	t.Helper()
	var eb protocol.ErrorBody
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&eb), "not the error shape: %s", r.body)
	require.NotEmpty(t, eb.Error.Code, "no code: %s", r.body)
	require.NotEmpty(t, eb.Error.Message, "no message: %s", r.body)
	return eb.Error.Code
}

// request sends a request; body is sent as is when it is a string or
// []byte, else as JSON. Headers come in pairs.
func (e *env) request(method, path, token string, body any, headers ...string) reply {
	e.t.Helper()
	var rd io.Reader
	switch v := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(v)
	case []byte:
		rd = bytes.NewReader(v)
	default:
		raw, err := json.Marshal(v)
		require.NoError(e.t, err)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	require.NoError(e.t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := e.hc.Do(req)
	require.NoError(e.t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(e.t, err)
	r := reply{status: resp.StatusCode, header: resp.Header, body: raw}
	e.checkAnswer(method, path, r)
	return r
}

// mustDo sends a request that must succeed (2xx) and decodes its answer
// into out (when not nil).
func (e *env) mustDo(method, path, token string, body, out any) reply {
	e.t.Helper()
	r := e.request(method, path, token, body)
	require.True(e.t, r.status >= 200 && r.status < 300, "%s %s: %d %s", method, path, r.status, r.body)
	if out != nil {
		require.NoError(e.t, json.Unmarshal(r.body, out))
	}
	return r
}

// snapshot is every key of the env's prefix with its serialized value:
// equal snapshots mean nothing changed.
func (e *env) snapshot() map[string]string {
	e.t.Helper()
	out := map[string]string{}
	iter := e.rc.Scan(e.ctx, 0, e.prefix+":*", 1000).Iterator()
	for iter.Next(e.ctx) {
		k := iter.Val()
		if k == e.prefix+":sweep" || k == e.prefix+":sweep:cursor" {
			continue // whose turn it is to sweep, and where: the reapers', come and go
		}
		v, err := e.rc.Dump(e.ctx, k).Result()
		if err == redis.Nil {
			continue
		}
		require.NoError(e.t, err)
		out[k] = v
	}
	require.NoError(e.t, iter.Err())
	return out
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
