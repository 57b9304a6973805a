package main

import (
	"context"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seatbroker/seatbroker/broker"
	"github.com/seatbroker/seatbroker/internal/testredis"
)

// TestAnInvalidInitAccountIsRefused: docs/configuration.md,
// -init-account "Create this account on start if it does not exist (ids:
// 1–63 of a-z0-9-)". An id that breaks that rule must stop the server with
// an error, not be logged as "account exists already, left as it is" while
// the node serves with no account at all.
func TestAnInvalidInitAccountIsRefused(t *testing.T) {
	cfg := broker.DefaultConfig()
	cfg.Prefix = testredis.Prefix(t)
	b, err := broker.New(testredis.Client(t), cfg, nil)
	require.NoError(t, err)
	defer b.Close()
	o := options{initAccount: "Acme Corp", initOwner: "owner", initPassword: "correct-horse", initSeats: 5, cfg: cfg}
	err = firstRun(context.Background(), b, o, slog.New(slog.DiscardHandler))
	assert.Error(t, err, "an account id that can never exist was taken for an existing account")
}

// TestBadEnvironmentValuesAreRefused: docs/configuration.md, "Every
// setting is a flag of seatbroker and an environment variable": the flag
// -lease 30 (no unit) is refused, so SEATBROKER_LEASE=30 must be too,
// rather than silently replaced by the default. The same for the other
// typed variables.
func TestBadEnvironmentValuesAreRefused(t *testing.T) {
	_, err := parseOptions([]string{"-lease", "30"})
	require.Error(t, err, "the flag is refused")
	for env, val := range map[string]string{
		"SEATBROKER_LEASE":                  "30",
		"SEATBROKER_HEARTBEAT":              "5",
		"SEATBROKER_CODE_DIGITS":            "twelve",
		"SEATBROKER_REDIS_CLUSTER":          "yes",
		"SEATBROKER_INIT_SEATS":             "25 seats",
		"SEATBROKER_TRUSTED_PROXIES":        "10.0.0.0/33",
		"SEATBROKER_WS_WAITING_PER_ADDRESS": "0",
	} {
		t.Run(env, func(t *testing.T) {
			t.Setenv(env, val)
			o, err := parseOptions(nil)
			assert.Error(t, err, "%s=%q was ignored (lease %v, heartbeat %v, code digits %d, cluster %v, init seats %d)",
				env, val, o.cfg.Lease, o.cfg.Heartbeat, o.cfg.CodeDigits, o.redisCluster, o.initSeats)
		})
	}
}

// TestAnUnknownLogLevelIsRefused: docs/configuration.md lists
// -log-level as one of debug, info, warn, error.
func TestAnUnknownLogLevelIsRefused(t *testing.T) {
	_, err := parseOptions([]string{"-log-level", "verbose"})
	assert.Error(t, err)
}

// TestAnExistingInitAccountIsLeftAsItIs: a second start with the same
// -init-account finds it and goes on serving.
func TestAnExistingInitAccountIsLeftAsItIs(t *testing.T) {
	cfg := broker.DefaultConfig()
	cfg.Prefix = testredis.Prefix(t)
	b, err := broker.New(testredis.Client(t), cfg, nil)
	require.NoError(t, err)
	defer b.Close()
	o := options{initAccount: "acme", initOwner: "owner", initPassword: "correct-horse", initSeats: 5, cfg: cfg}
	require.NoError(t, firstRun(context.Background(), b, o, slog.New(slog.DiscardHandler)))
	require.NoError(t, firstRun(context.Background(), b, o, slog.New(slog.DiscardHandler)), "the second start")
}

// TestEnvironmentValuesAreParsedAsTheirFlags: good values of each kind
// are taken, and a flag wins over its variable.
func TestEnvironmentValuesAreParsedAsTheirFlags(t *testing.T) {
	t.Setenv("SEATBROKER_LEASE", "40s")
	t.Setenv("SEATBROKER_REDIS_CLUSTER", "true")
	t.Setenv("SEATBROKER_CODE_DIGITS", "12")
	t.Setenv("SEATBROKER_LOG_LEVEL", "debug")
	o, err := parseOptions([]string{"-code-digits", "9"})
	require.NoError(t, err)
	assert.Equal(t, 40*time.Second, o.cfg.Lease)
	assert.True(t, o.redisCluster)
	assert.Equal(t, 9, o.cfg.CodeDigits, "the flag wins")
	assert.Equal(t, "debug", o.logLevel)

	t.Setenv("SEATBROKER_TRUSTED_PROXIES", "10.0.0.0/8, 2001:db8::1")
	o, err = parseOptions(nil)
	require.NoError(t, err)
	assert.True(t, o.trusted.Trusts(netip.MustParseAddr("10.20.30.40")))
	assert.True(t, o.trusted.Trusts(netip.MustParseAddr("2001:db8::1")))
	assert.False(t, o.trusted.Trusts(netip.MustParseAddr("192.0.2.1")))
}

// TestDashHPrintsTheFlagsAndSucceeds: docs/configuration.md says
// "`seatbroker -h` prints them all"; it did, then said "seatbroker: flag:
// help requested" and exited 1, as if something had gone wrong.
func TestDashHPrintsTheFlagsAndSucceeds(t *testing.T) {
	for _, arg := range []string{"-h", "-help", "--help"} {
		assert.NoError(t, run([]string{arg}), arg)
	}
}

// TestInitAccountIsCreatedInDemoModeToo: `seatbroker -init-account acme
// -init-owner alice -init-password ...` with no Redis URL started in demo
// mode and silently ignored the flags: the demo account was there, acme
// and its owner were not, and nothing said why.
func TestInitAccountIsCreatedInDemoModeToo(t *testing.T) {
	cfg := broker.DefaultConfig()
	cfg.Prefix = testredis.Prefix(t)
	b, err := broker.New(testredis.Client(t), cfg, nil)
	require.NoError(t, err)
	defer b.Close()
	o := options{demo: true, initAccount: "acme", initOwner: "alice", initPassword: "correct-horse", initSeats: 5, cfg: cfg}
	require.NoError(t, firstRun(context.Background(), b, o, slog.New(slog.DiscardHandler)))
	for _, c := range []broker.Credentials{
		{Account: "acme", Name: "alice", Password: "correct-horse"},
		{Account: demoAccount, Name: "owner", Password: demoPassword},
	} {
		_, err := b.SignIn(context.Background(), c, "127.0.0.1", broker.TokenClient, 0)
		assert.NoError(t, err, "%s/%s signs in", c.Account, c.Name)
	}
}

// TestDemoModeKeysExpireAsTimePasses: miniredis counts TTLs down only when
// told to. In the demo mode keys with a TTL must still go when it runs out,
// as in Redis: whose turn it is to sweep (else the demo swept once, at its
// start), tokens' lookups, codes, rejoin secrets.
func TestDemoModeKeysExpireAsTimePasses(t *testing.T) {
	c, closeRedis, err := openRedis(options{demo: true}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	defer closeRedis()
	ctx := context.Background()
	require.NoError(t, c.Set(ctx, "turn", "1", 150*time.Millisecond).Err())
	require.Eventually(t, func() bool {
		ok, err := c.SetNX(ctx, "turn", "2", time.Minute).Result()
		return err == nil && ok
	}, 3*time.Second, 20*time.Millisecond, "the key went when its TTL ran out")
}
