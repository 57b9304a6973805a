package rdb

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/seatbroker/seatbroker/internal/testredis"
)

func TestMain(m *testing.M) { testredis.Main(m) }

// TestEveryEmbeddedScriptLoads compiles every script in a real Redis: a
// syntax error or a global variable would fail here, not in production.
func TestEveryEmbeddedScriptLoads(t *testing.T) {
	c := testredis.Client(t)
	entries, err := luaFiles.ReadDir("lua")
	require.NoError(t, err)
	// every file is in exactly one script: the account script holds lib,
	// rules, timers, main and every operation; due_set, rate and token_put
	// stand alone
	require.Len(t, accountOps, len(entries)-7)
	for _, op := range accountOps {
		params := make([]string, op.arity)
		for i := range params {
			params[i] = fmt.Sprintf("a%d", i+1)
		}
		require.Contains(t, mustLua(op.name+".lua"),
			"OPS['"+op.name+"'] = function("+strings.Join(params, ", ")+")\n", "its arity is the one accountOps gives")
	}
	for _, s := range allScripts {
		sha, err := s.Load(context.Background(), c).Result()
		require.NoError(t, err)
		require.Equal(t, s.Hash(), sha)
	}
	name, err := c.FunctionLoadReplace(context.Background(), accountLibrary).Result()
	require.NoError(t, err)
	require.Equal(t, accountFunction, name)
}

// TestScriptsTouchOnlyTheirKeys: no script builds a key name itself, so
// every key it touches is passed in KEYS and shares the account's slot.
func TestScriptsTouchOnlyTheirKeys(t *testing.T) {
	entries, err := luaFiles.ReadDir("lua")
	require.NoError(t, err)
	for _, e := range entries {
		src := mustLua(e.Name())
		for _, bad := range []string{"..':'..", "KEYS[1] ..", "redis.call('KEYS'", "redis.call('SCAN'"} {
			require.False(t, strings.Contains(src, bad), "%s builds or searches key names (%q)", e.Name(), bad)
		}
	}
}

// TestAccountKeysShareOneHashTag: Redis Cluster puts every key of an
// account in one slot.
func TestAccountKeysShareOneHashTag(t *testing.T) {
	k := NewKeys("")
	for _, key := range k.account("acme") {
		require.True(t, strings.HasPrefix(key, "sb:v3:{acme}:"), key)
	}
}

// TestBenchCeilingTakesTheAccountKeys: make bench's raw ceiling is a script
// that touches as many keys as the account code takes (project issue 2);
// bench/ cannot import this package, so it keeps its own copy of the list.
func TestBenchCeilingTakesTheAccountKeys(t *testing.T) {
	src, err := os.ReadFile("../../../bench/store_bench_test.go")
	require.NoError(t, err)
	m := regexp.MustCompile(`names := \[\]string\{([^}]*)\}`).FindSubmatch(src)
	require.NotNil(t, m, "bench/store_bench_test.go lists the account's key names")
	var want []string
	for _, k := range (Keys{}).account("a") {
		want = append(want, strconv.Quote(strings.TrimPrefix(k, ":{a}:")))
	}
	require.Equal(t, strings.Join(want, ", "), string(m[1]))
}
