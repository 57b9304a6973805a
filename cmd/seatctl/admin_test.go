package main

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/seatbroker/seatbroker/broker"
	"github.com/seatbroker/seatbroker/broker/protocol"
	"github.com/seatbroker/seatbroker/broker/server"
	"github.com/seatbroker/seatbroker/internal/restclient"
	"github.com/seatbroker/seatbroker/internal/testredis"
)

func TestMain(m *testing.M) {
	broker.SetBcryptCost(bcrypt.MinCost)
	testredis.Main(m)
}

// TestAdminCommandsChangeTheAccountOverTheAPI runs the admin commands
// against a real node and reads the result from the broker.
func TestAdminCommandsChangeTheAccountOverTheAPI(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cfg := broker.DefaultConfig()
	cfg.Prefix = testredis.Prefix(t)
	b, err := broker.New(testredis.Client(t), cfg, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = b.Run(ctx) }()
	srv := httptest.NewServer(server.New(b, server.Options{}))
	t.Cleanup(func() { srv.Close(); cancel(); b.Close(); wg.Wait() })
	owner, err := b.Bootstrap(ctx, broker.AccountSpec{ID: "acme", Seats: 2, PPUEnabled: true, OwnerName: "boss"}, "boss-password")
	require.NoError(t, err)
	op, err := b.PrincipalFor(ctx, "acme", owner.ID)
	require.NoError(t, err)

	c := &rest{restclient.Client{Base: srv.URL + "/api/v1", HTTP: srv.Client()}}
	var signed struct{ Token string }
	require.NoError(t, c.do(ctx, "POST", "/auth/signin", map[string]any{"account": "acme", "name": "boss", "password": "boss-password", "kind": "client"}, &signed))
	run := func(fn func(context.Context, []string) error, args ...string) error {
		return fn(ctx, append([]string{"-server", srv.URL, "-token", signed.Token}, args...))
	}
	require.NoError(t, run(cmdUserAdd, "carol", "-password", "carol-password", "-max-seats", "1"))
	require.NoError(t, run(cmdSeats, "7"))
	require.NoError(t, run(cmdPermissions, "-view", "own", "-control", "own"))
	require.NoError(t, run(cmdPermissions, "-user", "carol", "-view", "domain"))
	require.NoError(t, run(cmdTopUp, "25", "-key", "k1"))
	require.NoError(t, run(cmdTopUp, "25", "-key", "k1"), "a retried top-up counts once")

	set, err := b.Settings(ctx, "acme")
	require.NoError(t, err)
	assert.Equal(t, int64(7), set.Seats)
	assert.Equal(t, protocol.ScopeOwn, set.View)
	o, err := b.OverviewOf(ctx, "acme")
	require.NoError(t, err)
	assert.Equal(t, int64(25), o.PPUBalance)
	us, err := b.Users(ctx, op)
	require.NoError(t, err)
	var carol protocol.User
	for _, u := range us {
		if u.Name == "carol" {
			carol = u
		}
	}
	require.NotEmpty(t, carol.ID)
	assert.Equal(t, protocol.ScopeDomain, carol.EffectiveView)
	require.NotNil(t, carol.MaxSeats)
	assert.Equal(t, 1, *carol.MaxSeats)

	g, err := b.Open(ctx, broker.OpenRequest{Account: "acme", UserID: carol.ID, DeviceID: "d"})
	require.NoError(t, err)
	require.NoError(t, run(cmdSessions))
	require.NoError(t, run(cmdEnd, g.Session.ID))
	s, err := b.Session(ctx, op, g.Session.ID)
	require.NoError(t, err)
	assert.Equal(t, protocol.StateTerminating, s.State)
	assert.Error(t, run(cmdEnd, g.Session.ID, "not-a-session"), "a session that was not ended fails the command")

	require.NoError(t, run(cmdBlock(true), "carol"))
	_, err = b.PrincipalFor(ctx, "acme", carol.ID)
	assert.ErrorIs(t, err, broker.ErrUserBlocked)

	err = run(cmdPermissions, "-view", "own", "-control", "domain")
	var ae *apiError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, protocol.CodeInvalidRequest, ae.Detail.Code)
	err = cmdUsers(ctx, []string{"-server", srv.URL, "-token", "sbt_wrong"})
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, protocol.CodeUnauthorized, ae.Detail.Code)
}
