package rdb

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// As a Redis function the account code keeps decoded records from one call
// to the next, keyed by their stored text (lib.lua, DECODED). What is
// stored must stay the truth.

func TestAccountCodeActsOnWhatIsStoredNotOnWhatItKept(t *testing.T) {
	s, c := batchStore(t, map[string]int{"ann": 0})
	ctx := context.Background()
	// rewrite changes a stored record outside the account code (an
	// operator, a restore)
	rewrite := func(key, field, from, to string) {
		raw, err := c.HGet(ctx, key, field).Result()
		require.NoError(t, err)
		changed := strings.Replace(raw, from, to, 1)
		require.NotEqual(t, raw, changed)
		require.NoError(t, c.HSet(ctx, key, field, changed).Err())
	}
	// the next call must act on the stored session, not on the table it kept
	sessionOf(t, runBatch(t, s, openOp("s1", "ann", "d1"))[0])
	rewrite(s.keys.Sessions("acme"), "s1", `"device_name":"host"`, `"device_name":"renamed"`)
	rec := sessionOf(t, runBatch(t, s, op("acme", opPause, "s1", "ann"))[0])
	require.Equal(t, "paused", rec.State)
	require.Equal(t, "renamed", rec.DeviceName)

	// the same for a user: blocked in the store, refused by the next call
	sessionOf(t, runBatch(t, s, openOp("s2", "ann", "d2"))[0])
	rewrite(s.keys.Users("acme"), "ann", `"status":"active"`, `"status":"blocked"`)
	r := runBatch(t, s, openOp("s3", "ann", "d3"))[0]
	require.NoError(t, r.err)
	require.Equal(t, StatusUserBlocked, r.res.Status)
}

func TestBlockAndUnblockLeaveTheKeptUserAlone(t *testing.T) {
	s, _ := batchStore(t, map[string]int{"ann": 0})
	ctx := context.Background()
	// an open keeps ann's record; block and unblock write it twice, the
	// second time as the very text it was before
	sessionOf(t, runBatch(t, s, openOp("s1", "ann", "d1"))[0])
	sessionOf(t, runBatch(t, s, closeOp("s1", "ann"))[0])
	_, err := s.Block(ctx, "acme", "ann", true, "owner")
	require.NoError(t, err)
	_, err = s.Block(ctx, "acme", "ann", false, "owner")
	require.NoError(t, err)
	rec := sessionOf(t, runBatch(t, s, openOp("s2", "ann", "d1"))[0])
	require.Equal(t, "active", rec.State)
}
