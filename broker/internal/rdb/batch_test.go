package rdb

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/seatbroker/seatbroker/internal/testredis"
)

// batchStore is a store on the test Redis with one account "acme" of two
// seats and the users given (id -> max_seats, 0 for none).
func batchStore(t *testing.T, users map[string]int) (*Store, redis.UniversalClient) {
	t.Helper()
	return batchStoreWith(t, users, time.Minute)
}

// batchStoreWith is batchStore with ended sessions kept for retention.
func batchStoreWith(t *testing.T, users map[string]int, retention time.Duration) (*Store, redis.UniversalClient) {
	t.Helper()
	c := testredis.Client(t)
	s := New(c, testredis.Prefix(t), Defaults{Lease: time.Minute, Standby: time.Minute, Paused: time.Minute,
		Notice: 30 * time.Second, Minute: time.Minute, Retention: retention})
	t.Cleanup(s.Close)
	ctx := context.Background()
	require.NoError(t, s.LoadScripts(ctx))
	require.True(t, s.UsesFunctions(), "redis-server 7 has functions")
	require.NoError(t, s.CreateAccount(ctx, "acme", map[string]string{"seats": "2"},
		UserRec{ID: "owner", Name: "owner", Role: "owner", Status: "active"}))
	for id, max := range users {
		u := UserRec{ID: id, Name: id, Role: "member", Status: "active"}
		if max > 0 {
			u.MaxSeats = &max
		}
		_, err := s.PutUser(ctx, "acme", u, true, 1000)
		require.NoError(t, err)
	}
	return s, c
}

// setSeats sets the account's prepaid seats, as the broker does: through
// the account code (a change by hand would have to drop the mirror's stamp).
func setSeats(t *testing.T, s *Store, n int) {
	t.Helper()
	r := runBatch(t, s, op("acme", opSettings, fmt.Sprintf(`{"seats":"%d"}`, n)))[0]
	require.NoError(t, r.err)
	require.Equal(t, StatusOK, r.res.Status, string(r.res.Payload))
}

// op is one operation for a hand-made batch.
func op(acct, name string, args ...any) *call {
	return &call{ctx: context.Background(), acct: acct, op: name, args: args, done: make(chan callResult, 1)}
}

// runBatch sends the calls as the batcher's workers do and returns each
// one's result.
func runBatch(t *testing.T, s *Store, calls ...*call) []callResult {
	t.Helper()
	s.batch.send(calls)
	out := make([]callResult, len(calls))
	for i, c := range calls {
		out[i] = <-c.done
	}
	return out
}

// runOneCall sends the calls as one call of the account code, as they
// are, without the batcher's grouping (which would split operations on one
// session into two calls), and returns each one's result.
func runOneCall(t *testing.T, s *Store, calls ...*call) []callResult {
	t.Helper()
	v, err := s.batch.call(context.Background(), s.client, calls).Result()
	require.NoError(t, err)
	res, _, err := decodeBatch(v, len(calls))
	require.NoError(t, err)
	out := make([]callResult, len(calls))
	for i := range calls {
		out[i] = callResult{res: res[i]}
	}
	return out
}

func sessionOf(t *testing.T, r callResult) SessionRec {
	t.Helper()
	require.NoError(t, r.err)
	require.Equal(t, StatusOK, r.res.Status, string(r.res.Payload))
	var rec SessionRec // an OK answer is the session itself
	require.NoError(t, json.Unmarshal(r.res.Payload, &rec))
	require.NotEmpty(t, rec.ID, string(r.res.Payload))
	return rec
}

func openOp(sid, uid, device string) *call {
	return op("acme", opOpen, sid, uid, device, "host", "")
}

func closeOp(sid, uid string) *call {
	return op("acme", opClose, sid, uid, "", uid, "closed")
}

func TestBatchRunsOperationsInOrder(t *testing.T) {
	s, _ := batchStore(t, map[string]int{"ann": 0, "bob": 0})
	ctx := context.Background()
	rs := runBatch(t, s,
		openOp("s1", "ann", "d1"),
		openOp("s2", "bob", "d1"),
		closeOp("s1", "ann"),
		// the seat s1 freed is there for s3: the account has two seats
		openOp("s3", "ann", "d2"),
	)
	for i, r := range rs {
		require.NoError(t, r.err, i)
		require.Equal(t, StatusOK, r.res.Status, "operation %d: %s", i, r.res.Payload)
	}
	require.Equal(t, "active", sessionOf(t, rs[3]).State)
	s1, err := s.Session(ctx, "acme", "s1")
	require.NoError(t, err)
	require.Equal(t, "ended", s1.State)
	acct, err := s.Account(ctx, "acme")
	require.NoError(t, err)
	require.Equal(t, "2", acct["used"])
	seats, err := s.Seats(ctx, "acme")
	require.NoError(t, err)
	require.Len(t, seats, 2)
}

func TestBatchDenialInTheMiddleChangesOnlyItself(t *testing.T) {
	s, c := batchStore(t, map[string]int{"ann": 1, "bob": 0})
	ctx := context.Background()
	rs := runBatch(t, s,
		openOp("s1", "ann", "d1"),
		openOp("s2", "ann", "d2"), // ann may hold one seat
		openOp("s3", "bob", "d1"),
	)
	require.Equal(t, StatusOK, rs[0].res.Status)
	require.Equal(t, StatusUserLimit, rs[1].res.Status)
	require.Equal(t, StatusOK, rs[2].res.Status)
	var denial Denial
	require.NoError(t, json.Unmarshal(rs[1].res.Payload, &denial))
	require.Len(t, denial.Own, 1)
	require.Equal(t, "s1", denial.Own[0].ID)
	exists, err := c.HExists(ctx, s.keys.account("acme")[2], "s2").Result()
	require.NoError(t, err)
	require.False(t, exists, "a denied open left a session behind")
}

// A block later in a batch ends what the user opened earlier in it.
func TestBatchBlockReachesSessionsOpenedEarlierInTheBatch(t *testing.T) {
	s, _ := batchStore(t, map[string]int{"ann": 0})
	ctx := context.Background()
	rs := runBatch(t, s,
		openOp("s1", "ann", "d1"),
		op("acme", opBlock, "ann", "1", "owner"),
		openOp("s2", "ann", "d2"),
	)
	require.Equal(t, StatusOK, rs[0].res.Status)
	require.Equal(t, StatusOK, rs[1].res.Status)
	require.Equal(t, StatusUserBlocked, rs[2].res.Status)
	s1, err := s.Session(ctx, "acme", "s1")
	require.NoError(t, err)
	require.Equal(t, "terminating", s1.State)
	require.Equal(t, "user_blocked", s1.Reason)
}

// The counting mode changes only while no seat is held, seats taken
// earlier in the same batch included.
func TestBatchModeChangeSeesSeatsTakenEarlierInTheBatch(t *testing.T) {
	s, _ := batchStore(t, map[string]int{"ann": 0})
	rs := runBatch(t, s,
		openOp("s1", "ann", "d1"),
		op("acme", opSettings, `{"mode":"user"}`),
	)
	require.Equal(t, StatusOK, rs[0].res.Status)
	require.Equal(t, StatusBadState, rs[1].res.Status)
}

// The reaper's next timer is read once the whole batch wrote back: an
// open after the reap in the same batch is not missed.
func TestBatchReapSeesTimersFiledLaterInTheBatch(t *testing.T) {
	s, _ := batchStore(t, map[string]int{"ann": 0})
	rs := runBatch(t, s,
		op("acme", opReap, reapSteps),
		openOp("s1", "ann", "d1"),
	)
	require.Equal(t, StatusOK, rs[0].res.Status)
	var p struct {
		Next string `json:"next"`
	}
	require.NoError(t, json.Unmarshal(rs[0].res.Payload, &p))
	s1 := sessionOf(t, rs[1])
	require.Equal(t, fmt.Sprint(s1.LeaseUntil), p.Next)
}

// A batch with an operation the script does not know fails as a whole and
// writes nothing, not even the operations before it.
func TestBatchWithUnknownOperationChangesNothing(t *testing.T) {
	s, c := batchStore(t, map[string]int{"ann": 0})
	ctx := context.Background()
	before := dumpKeys(t, c, s.keys.account("acme"))
	rs := runBatch(t, s,
		openOp("s1", "ann", "d1"),
		op("acme", "drop_everything"),
	)
	for _, r := range rs {
		require.ErrorContains(t, r.err, "bad operation")
	}
	require.Equal(t, before, dumpKeys(t, c, s.keys.account("acme")))
	_, err := s.Session(ctx, "acme", "s1")
	require.Error(t, err)
}

// Operations of several accounts in one batch each go to their own
// account's script call; one failing account does not fail the others.
func TestBatchSplitsByAccount(t *testing.T) {
	s, _ := batchStore(t, map[string]int{"ann": 0})
	rs := runBatch(t, s,
		openOp("s1", "ann", "d1"),
		op("nosuch", opOpen, "s9", "ann", "d1", "host", ""),
		openOp("s2", "ann", "d2"),
	)
	require.Equal(t, StatusOK, rs[0].res.Status)
	require.Equal(t, StatusNotFound, rs[1].res.Status)
	require.Equal(t, StatusOK, rs[2].res.Status)
}

func TestGroupKeepsOrderAndCapsScriptCalls(t *testing.T) {
	var batch []*call
	for i := range maxOps + 3 {
		batch = append(batch, op("a", opOpen, i), op("b", opOpen, i))
	}
	groups := group(batch)
	require.Len(t, groups, 4) // a: 64 + 3, b: 64 + 3
	n := map[string]int{}
	for _, g := range groups {
		require.LessOrEqual(t, len(g), maxOps)
		for _, c := range g {
			require.Equal(t, g[0].acct, c.acct)
			require.Equal(t, n[c.acct], c.args[0], "order within account %s", c.acct)
			n[c.acct]++
		}
	}
}

func dumpKeys(t *testing.T, c redis.UniversalClient, keys []string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, k := range keys {
		v, err := c.Dump(context.Background(), k).Result()
		if err == redis.Nil {
			continue
		}
		require.NoError(t, err)
		out[k] = v
	}
	return out
}

// Redis lost its functions and scripts (a restart without persistence, a
// failover to a node that never had them): the next calls load them again.
func TestAccountCallsSurviveLostFunctionsAndScripts(t *testing.T) {
	s, c := batchStore(t, map[string]int{"ann": 0})
	ctx := context.Background()
	require.NoError(t, c.FunctionFlush(ctx).Err())
	require.NoError(t, c.ScriptFlush(ctx).Err())
	rs := runBatch(t, s, openOp("s1", "ann", "d1"), openOp("s2", "ann", "d2"))
	for _, r := range rs {
		require.NoError(t, r.err)
		require.Equal(t, StatusOK, r.res.Status)
	}
	require.True(t, s.UsesFunctions())
	// and without functions at all, the same calls run as scripts
	s.batch.fcall.Store(false)
	require.NoError(t, c.ScriptFlush(ctx).Err())
	rs = runBatch(t, s, closeOp("s1", "ann"))
	require.Equal(t, "ended", sessionOf(t, rs[0]).State)
}

// A resume refused in the same call as the pause before it leaves the pause
// written: the refusal changes nothing, not even what came before it. (The
// batcher no longer puts two operations on one session in one call; the
// account code must still be right when they are.)
func TestBatchRefusedResumeKeepsThePauseBeforeIt(t *testing.T) {
	s, _ := batchStore(t, map[string]int{"ann": 0, "bob": 0})
	ctx := context.Background()
	sessionOf(t, runBatch(t, s, openOp("s1", "ann", "d1"))[0])
	sessionOf(t, runBatch(t, s, openOp("s2", "bob", "d1"))[0])
	rs := runOneCall(t, s,
		op("acme", opPause, "s1", "ann", ""),
		openOp("s3", "bob", "d2"), // takes the seat the pause freed
		op("acme", opResume, "s1", "ann"),
	)
	require.Equal(t, "paused", sessionOf(t, rs[0]).State)
	require.Equal(t, "active", sessionOf(t, rs[1]).State)
	require.Equal(t, StatusAccountLimit, rs[2].res.Status, string(rs[2].res.Payload))
	s1, err := s.Session(ctx, "acme", "s1")
	require.NoError(t, err)
	require.Equal(t, "paused", s1.State, "the pause is stored")
	acct, err := s.Account(ctx, "acme")
	require.NoError(t, err)
	require.Equal(t, "2", acct["used"])
}

// Two operations on one session go to two calls: each answer shows the
// session as its own operation left it, and two resumes report two
// fencing tokens.
func TestBatchPutsOneOperationPerSessionInACall(t *testing.T) {
	s, _ := batchStore(t, map[string]int{"ann": 0})
	sessionOf(t, runBatch(t, s, openOp("s1", "ann", "d1"))[0])
	groups := group([]*call{
		op("acme", opPause, "s1", "ann", ""),
		op("acme", opResume, "s1", "ann"),
		op("acme", opPause, "s1", "ann", ""),
		op("acme", opResume, "s1", "ann"),
		openOp("s2", "ann", "d2"), // another session: joins the last call
	})
	require.Len(t, groups, 4)
	require.Len(t, groups[3], 2)
	rs := runBatch(t, s,
		op("acme", opPause, "s1", "ann", ""),
		op("acme", opResume, "s1", "ann"),
		op("acme", opPause, "s1", "ann", ""),
		op("acme", opResume, "s1", "ann"),
	)
	require.Equal(t, "paused", sessionOf(t, rs[0]).State)
	first := sessionOf(t, rs[1])
	require.Equal(t, "active", first.State)
	require.Equal(t, "paused", sessionOf(t, rs[2]).State)
	second := sessionOf(t, rs[3])
	require.Equal(t, "active", second.State)
	require.NotEqual(t, first.Fence, second.Fence, "each resume is a grant of its own")
}

// Catching up fires a session's timer at the time the session says, not
// at a stale entry's: a session whose entry in the timers says "due" while
// its lease runs on is not ended, and its entry is put right.
func TestCatchUpActsOnTheSessionNotOnAStaleTimer(t *testing.T) {
	s, c := batchStore(t, map[string]int{"ann": 0})
	ctx := context.Background()
	rec := sessionOf(t, runBatch(t, s, openOp("s1", "ann", "d1"))[0])
	require.Equal(t, "active", rec.State)
	due := s.keys.Due("acme")
	require.NoError(t, c.ZAdd(ctx, due, redis.Z{Score: float64(rec.Created - 5000), Member: "s1"}).Err())
	r := runBatch(t, s, op("acme", opReap, "100"))[0]
	require.NoError(t, r.err)
	require.Equal(t, StatusOK, r.res.Status)
	s1, err := s.Session(ctx, "acme", "s1")
	require.NoError(t, err)
	require.Equal(t, "active", s1.State, "the lease runs on")
	score, err := c.ZScore(ctx, due, "s1").Result()
	require.NoError(t, err)
	require.Equal(t, float64(s1.LeaseUntil), score, "the entry is filed at the lease's end again")
}

// A minute that would start at the very instant a PPU stretch ends is not
// billed, whichever order Redis keeps the two timers of that instant in:
// here a prepaid seat frees (its holder's lease lapses) at the instant a
// PPU session's second minute would start, and the PPU session's id sorts
// first. The minute is billed 1 ms after its start (timers.lua, due), so
// the promotion comes first.
func TestMinuteAtTheInstantOfAPromotionIsNotBilled(t *testing.T) {
	// lease and PPU minute: the reap comes d/4 after ann's lease and d/4
	// before bob's, margins a loaded -race run keeps (at 400 ms it did not)
	const d = 1200 * time.Millisecond
	s := acmePPUStore(t, Defaults{Lease: d, Standby: time.Minute, Paused: time.Minute,
		Notice: 30 * time.Second, Minute: d, Retention: time.Minute}, "1", 100)
	ctx := context.Background()
	// one call: both sessions start at one instant, so ann's lease and
	// bob's first minute end together
	rs := runBatch(t, s, openOp("b-ann", "ann", "d1"), openOp("a-bob", "bob", "d1"))
	require.Equal(t, "prepaid", sessionOf(t, rs[0]).Kind)
	bob := sessionOf(t, rs[1])
	require.Equal(t, "ppu", bob.Kind)
	require.Equal(t, int64(1), bob.Billed)
	time.Sleep(d / 2)
	_, _, err := s.Renew(ctx, "acme", "bob", []FenceRef{{ID: bob.ID, Fence: bob.Fence}}) // bob's lease runs on
	require.NoError(t, err)
	time.Sleep(d/2 + d/4) // past ann's lease, before bob's
	r := runBatch(t, s, op("acme", opReap, "100"))[0]
	require.NoError(t, r.err)
	ann, err := s.Session(ctx, "acme", "b-ann")
	require.NoError(t, err)
	require.Equal(t, "ended", ann.State, "ann's lease lapsed")
	got, err := s.Session(ctx, "acme", "a-bob")
	require.NoError(t, err)
	require.Equal(t, "active", got.State)
	require.Equal(t, "prepaid", got.Kind, "bob took the seat ann's lapse freed")
	require.Equal(t, ann.At, got.Promoted)
	require.Equal(t, int64(1), got.Billed, "the second minute would have started as the stretch ended")
}

// An operation with the wrong number of arguments (a bug in the store) is
// refused before it joins a batch: in one, it would have the whole batch
// refused, other callers' operations with it.
func TestOperationWithWrongArgumentCountIsRefusedAlone(t *testing.T) {
	s, _ := batchStore(t, map[string]int{"ann": 0})
	ctx := context.Background()
	_, err := s.batch.run(ctx, "acme", opClose, []any{"s1", "ann"})
	require.ErrorContains(t, err, `operation "close" with 2 arguments`)
	_, err = s.batch.run(ctx, "acme", "drop_everything", nil)
	require.Error(t, err)
	r, err := s.batch.run(ctx, "acme", opOpen, []any{"s1", "ann", "d1", "host", ""})
	require.NoError(t, err)
	require.Equal(t, StatusOK, r.Status)
}
