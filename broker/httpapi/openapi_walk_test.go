package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seatbroker/seatbroker/broker"
	"github.com/seatbroker/seatbroker/broker/httpapi"
	"github.com/seatbroker/seatbroker/broker/protocol"
	"github.com/seatbroker/seatbroker/broker/server"
	"github.com/seatbroker/seatbroker/internal/testredis"
)

// TestEveryOperationAnswersAsItsOpenAPIDocumentSays sends every operation
// of the OpenAPI document a request that succeeds, and the API each error
// that docs/api.md lists (400, 401, 402, 403, 404, 409, 413, 429): every
// answer's status is one the document declares for the operation, and its
// body is valid by the declared schema (env.request checks each; see
// openapi_check_test.go).
func TestEveryOperationAnswersAsItsOpenAPIDocumentSays(t *testing.T) {
	t.Parallel()
	e := newEnv(t, server.Options{})
	a := e.account(2, true)
	owner := a.token
	m := a.user("m", protocol.RoleMember)
	mTok := e.signIn(a.id, "m")
	s := a.open(m.ID, "desk")
	ok := func(method, path, token string, body any) reply {
		t.Helper()
		r := e.request(method, path, token, body)
		require.True(t, r.status < 300, "%s %s: %d %s", method, path, r.status, r.body)
		return r
	}
	fails := func(status int, method, path, token string, body any, headers ...string) {
		t.Helper()
		r := e.request(method, path, token, body, headers...)
		require.Equal(t, status, r.status, "%s %s: %s", method, path, r.body)
	}

	// meta and auth
	ok(http.MethodGet, "/api/v1/openapi.json", "", nil)
	e.webSession(a.id, "owner")
	spare := e.signIn(a.id, "owner")
	ok(http.MethodPost, "/api/v1/auth/signout", spare, nil)
	fails(http.StatusUnauthorized, http.MethodGet, "/api/v1/me", spare, nil)
	fails(http.StatusBadRequest, http.MethodPost, "/api/v1/auth/signin", "", `{"account":1}`)
	fails(http.StatusRequestEntityTooLarge, http.MethodPost, "/api/v1/ppu/topup", owner,
		`{"note":"`+strings.Repeat("a", httpapi.MaxBody)+`"}`)
	ok(http.MethodGet, "/api/v1/me", owner, nil)
	ok(http.MethodGet, "/api/v1/overview", mTok, nil)
	ctx, cancel := context.WithCancel(context.Background())
	e.openStream(ctx, "Authorization", "Bearer "+owner)
	cancel()
	fails(http.StatusNotFound, http.MethodGet, "/api/v1/no-such-route", owner, nil)

	// sessions
	ok(http.MethodGet, "/api/v1/sessions?state=active,paused&limit=10", owner, nil)
	fails(http.StatusBadRequest, http.MethodGet, "/api/v1/sessions?limit=x", owner, nil)
	ok(http.MethodGet, "/api/v1/sessions/"+s.ID, owner, nil)
	fails(http.StatusNotFound, http.MethodGet, "/api/v1/sessions/00000000-0000-0000-0000-000000000000", owner, nil)
	ok(http.MethodGet, "/api/v1/sessions/"+s.ID+"/ledger", owner, nil)
	ok(http.MethodPost, "/api/v1/sessions/"+s.ID+"/pause", mTok, nil)
	fails(http.StatusNotFound, http.MethodPost, "/api/v1/sessions/"+s.ID+"/resume", owner, nil) // another user's paused session
	ok(http.MethodPost, "/api/v1/sessions/"+s.ID+"/resume", mTok, nil)
	ok(http.MethodPost, "/api/v1/codes", owner, map[string]string{"device_id": "d1", "device_name": "one"})
	// both licenses are in use, PPU is on with 0 minutes
	fails(http.StatusPaymentRequired, http.MethodPost, "/api/v1/codes", owner, map[string]string{"device_id": "d2"})
	ok(http.MethodPatch, "/api/v1/settings", owner, map[string]any{"ppu_enabled": false})
	var denied protocol.ErrorBody
	r := e.request(http.MethodPost, "/api/v1/codes", mTok, map[string]string{"device_id": "d3"})
	require.Equal(t, http.StatusConflict, r.status, "%s", r.body)
	require.NoError(t, json.Unmarshal(r.body, &denied))
	assert.Equal(t, protocol.CodeAccountLimit, denied.Error.Code)
	assert.NotEmpty(t, denied.Error.Own, "the denial lists the member's own session")
	ok(http.MethodPatch, "/api/v1/users/"+m.ID, owner, map[string]any{"max_seats": 1})
	fails(http.StatusConflict, http.MethodPost, "/api/v1/codes", mTok, map[string]string{"device_id": "d3"})
	ok(http.MethodPost, "/api/v1/sessions/end", owner, map[string]any{"session_ids": []string{s.ID, "nope"}})

	// users
	ok(http.MethodGet, "/api/v1/users", owner, nil)
	fails(http.StatusForbidden, http.MethodGet, "/api/v1/users", mTok, nil)
	u := ok(http.MethodPost, "/api/v1/users", owner, map[string]any{"name": "n", "password": password, "max_seats": 2})
	var nu protocol.User
	require.NoError(t, json.Unmarshal(u.body, &nu))
	fails(http.StatusBadRequest, http.MethodPost, "/api/v1/users", owner, map[string]any{"name": "n"})
	ok(http.MethodGet, "/api/v1/users/"+nu.ID, owner, nil)
	ok(http.MethodPatch, "/api/v1/users/"+nu.ID, owner, map[string]any{"view": "own", "control": "own"})
	nTok := e.signIn(a.id, "n")
	ok(http.MethodPost, "/api/v1/users/"+nu.ID+"/block", owner, nil)
	fails(http.StatusForbidden, http.MethodGet, "/api/v1/me", nTok, nil)
	ok(http.MethodPost, "/api/v1/users/"+nu.ID+"/unblock", owner, nil)
	ok(http.MethodPut, "/api/v1/users/"+nu.ID+"/password", owner, map[string]string{"password": "another-password"})
	ok(http.MethodPost, "/api/v1/users/"+nu.ID+"/revoke-tokens", owner, nil)

	// settings and PPU
	ok(http.MethodGet, "/api/v1/settings", mTok, nil)
	ok(http.MethodGet, "/api/v1/ppu", owner, nil)
	ok(http.MethodPost, "/api/v1/ppu/topup", owner, map[string]any{"minutes": 5, "key": "k1", "note": "walk"})
	ok(http.MethodGet, "/api/v1/ppu/ledger?limit=5", owner, nil)
	ok(http.MethodGet, "/api/v1/ppu/reconcile", owner, nil)

	// last, as it uses up this address's sign-ins
	fails(http.StatusUnauthorized, http.MethodPost, "/api/v1/auth/signin", "", map[string]string{
		"account": a.id, "name": "owner", "password": "wrong-password"})
	for range 6 {
		e.request(http.MethodPost, "/api/v1/auth/signin", "", map[string]string{
			"account": a.id, "name": "nobody", "password": "wrong-password"})
	}
	assert.True(t, e.answered("POST /auth/signin 429"), "six failed sign-ins of one name are rate limited")

	var missing []string
	for _, op := range documentedOperations(t) {
		found := false
		for _, st := range []string{"200", "201", "204"} {
			found = found || e.answered(op+" "+st)
		}
		if !found {
			missing = append(missing, op)
		}
	}
	sort.Strings(missing)
	assert.Empty(t, missing, "operations the walk never saw succeed")
	for _, st := range []string{"400", "401", "402", "403", "404", "409", "413", "429"} {
		seen := false
		for _, op := range documentedOperations(t) {
			seen = seen || e.answered(op+" "+st)
		}
		seen = seen || e.answered("GET (no operation) "+st)
		assert.True(t, seen, "no answer with status %s", st)
	}
}

// documentedOperations lists "GET /sessions/{id}" for every operation of
// the OpenAPI document.
func documentedOperations(t *testing.T) []string {
	t.Helper()
	var out []string
	for p, ops := range loadOpenAPI(t).Paths {
		for m := range ops {
			out = append(out, strings.ToUpper(m)+" "+p)
		}
	}
	return out
}

// TestAnUnreachableRedisAnswersAsTheOpenAPIDocumentSays: with Redis gone,
// a request answers 503 unavailable in the declared error shape.
func TestAnUnreachableRedisAnswersAsTheOpenAPIDocumentSays(t *testing.T) {
	t.Parallel()
	srv, err := testredis.Start()
	require.NoError(t, err)
	defer srv.Stop()
	rc := redis.NewClient(&redis.Options{Addr: srv.Addr, MaxRetries: -1, DialTimeout: time.Second})
	t.Cleanup(func() { _ = rc.Close() })
	cfg := broker.DefaultConfig()
	cfg.Prefix = testredis.Prefix(t)
	b := startBroker(t, rc, cfg)
	hs := httptest.NewServer(server.New(b, server.Options{}))
	tr := &http.Transport{}
	t.Cleanup(func() { hs.Close(); tr.CloseIdleConnections() })
	e := &env{t: t, b: b, rc: rc, prefix: cfg.Prefix, srv: hs, hc: &http.Client{Transport: tr},
		ctx: context.Background(), answers: &answerLog{seen: map[string]bool{}}}
	a := e.account(1, false)
	srv.Stop()
	r := e.request(http.MethodGet, "/api/v1/overview", a.token, nil)
	require.Equal(t, http.StatusServiceUnavailable, r.status, "%s", r.body)
	assert.Equal(t, protocol.CodeUnavailable, r.errCode(t))
	assert.True(t, e.answered("GET /overview 503"))
}

// TestOpenAPISecurityIsTheRoutes: an operation the document marks as
// needing no credentials (security: []) answers without them, and every
// other answers 401 unauthorized without them.
func TestOpenAPISecurityIsTheRoutes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, server.Options{})
	var doc struct {
		Paths map[string]map[string]struct {
			Security *[]any `json:"security"`
		} `json:"paths"`
	}
	require.NoError(t, json.Unmarshal(httpapi.OpenAPI, &doc))
	for p, ops := range doc.Paths {
		path := "/api/v1" + strings.ReplaceAll(p, "{id}", "00000000-0000-0000-0000-000000000000")
		for m, op := range ops {
			method := strings.ToUpper(m)
			if method == http.MethodGet && p == "/events" {
				continue // a stream: below
			}
			r := e.request(method, path, "", nil)
			if op.Security != nil && len(*op.Security) == 0 {
				assert.NotEqual(t, http.StatusUnauthorized, r.status, "%s %s needs no credentials by the document", method, p)
				continue
			}
			assert.Equal(t, http.StatusUnauthorized, r.status, "%s %s without credentials: %s", method, p, r.body)
		}
	}
	r := e.request(http.MethodGet, "/api/v1/events", "", nil)
	assert.Equal(t, http.StatusUnauthorized, r.status)
}
