package rdb

import (
	"context"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// As a Redis function the account code keeps what it read and wrote from
// one call to the next: decoded records keyed by their stored text
// (lib.lua, DECODED) and, per account, the stored values of the sessions,
// seats and users hashes (MIRRORS), valid while the account's stamp is the
// one it wrote. What is stored must stay the truth for whoever follows the
// rule of docs/design.md: a writer outside the account code removes the
// account's stamp.

func TestAccountCodeActsOnWhatIsStoredNotOnWhatItKept(t *testing.T) {
	s, c := batchStore(t, map[string]int{"ann": 0})
	ctx := context.Background()
	// rewrite changes a stored record outside the account code (an
	// operator, a repair script), as docs/design.md says one must
	rewrite := func(key, field, from, to string) {
		raw, err := c.HGet(ctx, key, field).Result()
		require.NoError(t, err)
		changed := strings.Replace(raw, from, to, 1)
		require.NotEqual(t, raw, changed)
		require.NoError(t, c.HSet(ctx, key, field, changed).Err())
		require.NoError(t, c.HDel(ctx, s.keys.AccountHash("acme"), "stamp").Err())
	}
	// the next call must act on the stored session, not on the table it kept
	sessionOf(t, runBatch(t, s, openOp("s1", "ann", "d1"))[0])
	rewrite(s.keys.Sessions("acme"), "s1", `"device_name":"host"`, `"device_name":"renamed"`)
	rec := sessionOf(t, runBatch(t, s, op("acme", opPause, "s1", "ann", ""))[0])
	require.Equal(t, "paused", rec.State)
	require.Equal(t, "renamed", rec.DeviceName)

	// the same for a user: blocked in the store, refused by the next call
	sessionOf(t, runBatch(t, s, openOp("s2", "ann", "d2"))[0])
	rewrite(s.keys.Users("acme"), "ann", `"status":"active"`, `"status":"blocked"`)
	r := runBatch(t, s, openOp("s3", "ann", "d3"))[0]
	require.NoError(t, r.err)
	require.Equal(t, StatusUserBlocked, r.res.Status)
}

// After a failover, or a cluster slot that moved away and back, the account
// may have been changed by another Redis's account code, which stores a
// stamp of its own: what this one kept is then dropped.
func TestAccountCodeDropsWhatItKeptWhenAnotherStampIsStored(t *testing.T) {
	s, c := batchStore(t, map[string]int{"ann": 0, "bob": 0})
	ctx := context.Background()
	acct := s.keys.AccountHash("acme")
	sessionOf(t, runBatch(t, s, openOp("s1", "ann", "d1"))[0])
	stamp, err := c.HGet(ctx, acct, "stamp").Result()
	require.NoError(t, err, "a call that wrote stores a stamp")

	// another primary ended s1 and freed its seat (its writes, as they
	// would arrive here), under a stamp of its own
	ended := strings.Replace(c.HGet(ctx, s.keys.Sessions("acme"), "s1").Val(), `"state":"active"`, `"state":"ended"`, 1)
	_, err = c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, s.keys.Sessions("acme"), "s1", ended)
		p.HDel(ctx, s.keys.Seats("acme"), "ann|d1", "@ann")
		p.HSet(ctx, acct, "used", "0", "stamp", "other-redis:1")
		return nil
	})
	require.NoError(t, err)

	// s1 is ended: a pause finds it so, and both seats are free for others
	r := runBatch(t, s, op("acme", opPause, "s1", "ann", ""))[0]
	require.NoError(t, r.err)
	require.Equal(t, StatusBadState, r.res.Status)
	sessionOf(t, runBatch(t, s, openOp("s2", "bob", "d1"))[0])
	sessionOf(t, runBatch(t, s, openOp("s3", "ann", "d2"))[0])
	seats, err := c.HGetAll(ctx, s.keys.Seats("acme")).Result()
	require.NoError(t, err)
	require.NotContains(t, seats, "ann|d1", "the seat the other primary freed stays free")
	require.Equal(t, "2", c.HGet(ctx, acct, "used").Val())
	require.NotEqual(t, stamp, c.HGet(ctx, acct, "stamp").Val())
}

// The account hash itself is kept too (lib.lua, acct): the next call reads
// only its stamp. A change by hand that drops the stamp, or a stamp that
// another Redis's account code stored, makes it read the hash again.
func TestAccountCodeActsOnTheStoredAccountHash(t *testing.T) {
	s, c := batchStore(t, map[string]int{"ann": 0, "bob": 0})
	ctx := context.Background()
	acct := s.keys.AccountHash("acme")
	sessionOf(t, runBatch(t, s, openOp("s1", "ann", "d1"))[0]) // seats 2, used 1

	// an operator lowers the seats by hand, and drops the stamp
	require.NoError(t, c.HSet(ctx, acct, "seats", "1").Err())
	require.NoError(t, c.HDel(ctx, acct, "stamp").Err())
	r := runBatch(t, s, openOp("s2", "bob", "d1"))[0]
	require.NoError(t, r.err)
	require.Equal(t, StatusAccountLimit, r.res.Status, "the next call counts the stored seats")

	// another primary raised them again, under a stamp of its own
	require.NoError(t, c.HSet(ctx, acct, "seats", "2", "stamp", "other-redis:1").Err())
	sessionOf(t, runBatch(t, s, openOp("s2", "bob", "d1"))[0])
	require.Equal(t, "2", c.HGet(ctx, acct, "used").Val())
}

// A call that changes the account hash and nothing else (a top-up, new
// settings) stores a new stamp as well: the account code of another Redis
// that kept the hash under the old stamp (before a failover and back) must
// not take its copy for the stored one.
func TestAChangeToTheAccountHashAloneStoresANewStamp(t *testing.T) {
	s, c := batchStore(t, map[string]int{"ann": 0})
	ctx := context.Background()
	acct := s.keys.AccountHash("acme")
	sessionOf(t, runBatch(t, s, openOp("s1", "ann", "d1"))[0])
	before := c.HGet(ctx, acct, "stamp").Val()
	require.NotEmpty(t, before)
	setSeats(t, s, 5)
	after := c.HGet(ctx, acct, "stamp").Val()
	require.NotEmpty(t, after)
	require.NotEqual(t, before, after)
}

// A call changes the seats and the account in its mirror as it goes, and
// writes back at its end. A call that fails half way (a Lua error: Redis
// answers the whole call with it) wrote nothing back, and must leave no
// mirror behind, or the next call would act on seats and counters that
// Redis never stored.
func TestACallThatFailsLeavesNoMirrorBehind(t *testing.T) {
	s, c := batchStore(t, map[string]int{"ann": 0, "bob": 0})
	ctx := context.Background()
	sessionOf(t, runBatch(t, s, openOp("s0", "bob", "d1"))[0]) // seats 2, used 1

	// ann's open takes the second seat, in the mirror; then the call fails
	rs := runBatch(t, s, openOp("s1", "ann", "d1"), op("acme", opSettings, "{not json"))
	for _, r := range rs {
		require.Error(t, r.err)
	}
	require.Equal(t, "1", c.HGet(ctx, s.keys.AccountHash("acme"), "used").Val())
	require.False(t, c.HExists(ctx, s.keys.Seats("acme"), "ann|d1").Val())
	require.False(t, c.HExists(ctx, s.keys.Sessions("acme"), "s1").Val())

	// the next call finds the second seat free, and ann's seat empty
	rec := sessionOf(t, runBatch(t, s, openOp("s2", "ann", "d1"))[0])
	require.Equal(t, "active", rec.State)
	require.Equal(t, "P ann s2", c.HGet(ctx, s.keys.Seats("acme"), "ann|d1").Val())
	require.Equal(t, "2", c.HGet(ctx, s.keys.AccountHash("acme"), "used").Val())
}

// The call's sets of changed sessions and seats are kept from call to
// call and emptied as a call ends (lib.lua, CLEAN). A call that fails half
// way has not emptied them: the next must not write back what they still
// name. Here the failed call had freed bob's seat in its mirror; written
// back by the next call, that would delete a seat bob still holds.
func TestACallThatFailsLeavesNoChangesForTheNextToWrite(t *testing.T) {
	s, c := batchStore(t, map[string]int{"ann": 0, "bob": 0})
	ctx := context.Background()
	sessionOf(t, runBatch(t, s, openOp("s0", "bob", "d1"))[0])

	rs := runBatch(t, s, closeOp("s0", "bob"), op("acme", opSettings, "{not json"))
	for _, r := range rs {
		require.Error(t, r.err)
	}
	require.Equal(t, "P bob s0", c.HGet(ctx, s.keys.Seats("acme"), "bob|d1").Val())

	sessionOf(t, runBatch(t, s, openOp("s1", "ann", "d1"))[0])
	assert.Equal(t, "P bob s0", c.HGet(ctx, s.keys.Seats("acme"), "bob|d1").Val(), "bob still holds his seat")
	assert.Equal(t, "bob|d1", c.HGet(ctx, s.keys.Seats("acme"), "@bob").Val())
	assert.Equal(t, "2", c.HGet(ctx, s.keys.AccountHash("acme"), "used").Val())
	rec, err := s.Session(ctx, "acme", "s0")
	require.NoError(t, err)
	assert.Equal(t, "active", rec.State)
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
