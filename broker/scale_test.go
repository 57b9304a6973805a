package broker_test

import (
	"bufio"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seatbroker/seatbroker/broker"
	"github.com/seatbroker/seatbroker/broker/protocol"
	"github.com/seatbroker/seatbroker/internal/testredis"
)

// privateRedis starts a redis-server of the test's own, for tests that
// count what Redis did (INFO commandstats counts the whole server's
// commands, other tests' too).
func privateRedis(t *testing.T) *redis.Client {
	t.Helper()
	srv, err := testredis.Start()
	require.NoError(t, err)
	t.Cleanup(srv.Stop)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// commandCalls reads how many times Redis ran each command since the last
// CONFIG RESETSTAT, commands that scripts ran included.
func commandCalls(t *testing.T, c *redis.Client) map[string]int {
	t.Helper()
	info, err := c.Info(t.Context(), "commandstats").Result()
	require.NoError(t, err)
	out := map[string]int{}
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		name, rest, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "cmdstat_"), ":calls=")
		if !ok {
			continue
		}
		n, _ := strconv.Atoi(rest[:strings.IndexByte(rest, ',')])
		out[name] = n
	}
	return out
}

// longTimers keeps every session of a test alive for its whole run.
func longTimers(c *broker.Config) {
	c.Lease, c.Heartbeat = time.Hour, time.Minute
	c.Standby, c.Paused = time.Hour, time.Hour
}

func TestBlockingReadsOnlyTheBlockedUsersSessions(t *testing.T) {
	t.Parallel()
	c := privateRedis(t)
	f := newFixture(t, c, setup{seats: 1000, cfg: longTimers})
	var other broker.Principal
	var others []string
	for i := range 300 { // a user holds at most 100 seat keys
		if i%100 == 0 {
			other = f.user(fmt.Sprintf("other%d", i), nil)
		}
		others = append(others, f.mustOpen(other, fmt.Sprintf("o%d", i)).Session.ID)
	}
	u := f.user("blocked", nil)
	active := f.mustOpen(u, "d1").Session
	standby := f.openCode(u, "d2").Session
	paused, err := f.b.Pause(f.ctx, f.acct, u.UserID, f.mustOpen(u, "d3").Session.ID, "")
	require.NoError(t, err)

	require.NoError(t, c.ConfigResetStat(f.ctx).Err())
	_, err = f.b.BlockUser(f.ctx, f.owner, u.UserID, true)
	require.NoError(t, err)
	calls := commandCalls(t, c)

	// every session of the user is ended or given the notice...
	require.Equal(t, protocol.StateTerminating, f.state(active.ID).State)
	require.Equal(t, protocol.StateEnded, f.state(standby.ID).State)
	require.Equal(t, protocol.StateEnded, f.state(paused.ID).State)
	// ...and none of the 300 of other users was read to find them: one
	// Lua call that reads the whole account stops Redis for everyone
	for _, cmd := range []string{"hvals", "hkeys", "hscan"} {
		require.Zero(t, calls[cmd], "blocking ran %s: it read every session of the account", cmd)
	}
	require.Less(t, calls["hget"], 30, "blocking read sessions one by one: %v", calls)
	for _, sid := range others {
		require.Equal(t, protocol.StateActive, f.state(sid).State, "another user's session")
	}
}

func TestAUserKeepsAtMostAHundredPausedSessions(t *testing.T) {
	t.Parallel()
	f := newFixture(t, testredis.Client(t), setup{seats: 10, cfg: longTimers})
	u := f.user("ann", nil)
	for range broker.MaxPausedSessions {
		g := f.mustOpen(u, "d1")
		_, err := f.b.Pause(f.ctx, f.acct, u.UserID, g.Session.ID, "")
		require.NoError(t, err)
	}
	g := f.mustOpen(u, "d1")
	_, err := f.b.Pause(f.ctx, f.acct, u.UserID, g.Session.ID, "")
	require.True(t, errors.Is(err, broker.ErrUserLimit), "the 101st pause: %v", err)
	require.Equal(t, protocol.StateActive, f.state(g.Session.ID).State, "a refused pause changes nothing")
	require.Equal(t, int64(1), f.overview().InUse)

	// ending a paused one makes room again
	ss, _, err := f.b.Sessions(f.ctx, u, broker.SessionFilter{States: []string{protocol.StatePaused}, Limit: 1})
	require.NoError(t, err)
	f.close(u, ss[0].ID)
	_, err = f.b.Pause(f.ctx, f.acct, u.UserID, g.Session.ID, "")
	require.NoError(t, err)
}

func TestEndSelectedSessionsEndsAThousandAtOnce(t *testing.T) {
	t.Parallel()
	c := privateRedis(t)
	f := newFixture(t, c, setup{seats: 1000, cfg: longTimers})
	var ids []string
	for i := range 10 { // the page lists up to 1,000 rows, and selects them all
		u := f.user(fmt.Sprintf("u%d", i), nil)
		for d := range 100 { // (a user holds at most 100 seat keys)
			ids = append(ids, f.mustOpen(u, fmt.Sprintf("d%d", d)).Session.ID)
		}
	}
	require.NoError(t, c.ConfigResetStat(f.ctx).Err())
	res, err := f.b.EndSessions(f.ctx, f.owner, ids)
	require.NoError(t, err)
	require.Len(t, res, 1000)
	for i, r := range res {
		require.True(t, r.OK, "session %d: %+v", i, r.Error)
		require.Equal(t, ids[i], r.ID)
		require.Equal(t, protocol.StateTerminating, r.Session.State)
	}
	// no one call of the account code ends them all: a call holds Redis
	// for every account while it runs (~0.12 ms a session)
	require.GreaterOrEqual(t, commandCalls(t, c)["fcall"], 1000/broker.EndChunk)
}

func TestSessionListReadsTheAccountInChunks(t *testing.T) {
	t.Parallel()
	c := privateRedis(t)
	f := newFixture(t, c, setup{seats: 2000, cfg: longTimers})
	var live []protocol.Session
	for i := range 12 {
		u := f.user(fmt.Sprintf("u%d", i), nil)
		for d := range 100 {
			g := f.mustOpen(u, fmt.Sprintf("d%d", d))
			if d%4 == 0 {
				f.close(u, g.Session.ID) // ended sessions stay a while, unlisted
				continue
			}
			live = append(live, g.Session)
		}
	}
	want := slices.Clone(live)
	slices.SortFunc(want, func(a, b protocol.Session) int {
		if c := b.Created.Compare(a.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})

	require.NoError(t, c.ConfigResetStat(f.ctx).Err())
	for _, page := range []struct{ offset, limit int }{{0, 10}, {5, 100}, {850, 100}, {0, 1000}} {
		got, total, err := f.b.Sessions(f.ctx, f.owner, broker.SessionFilter{Offset: page.offset, Limit: page.limit})
		require.NoError(t, err)
		require.Equal(t, len(want), total)
		end := min(page.offset+page.limit, len(want))
		require.Len(t, got, end-page.offset)
		for i, s := range got {
			require.Equal(t, want[page.offset+i].ID, s.ID, "page %+v, row %d", page, i)
		}
	}
	// the list was read a part at a time: one command that reads every
	// session of an account (HVALS: 33 ms and 23 MB at 50,000 sessions)
	// stops Redis for everyone while it runs
	calls := commandCalls(t, c)
	require.Zero(t, calls["hvals"]+calls["hgetall"], "the list read the whole account at once: %v", calls)
	require.GreaterOrEqual(t, calls["hscan"], 4*1200/broker.SessionScanChunk)
}

func TestUserListReadsOnlyItsUsersSeatCounts(t *testing.T) {
	t.Parallel()
	c := privateRedis(t)
	f := newFixture(t, c, setup{seats: 1000, cfg: longTimers})
	held := map[string]int{}
	for i := range 5 {
		u := f.user(fmt.Sprintf("u%d", i), nil)
		for d := range 20 * i {
			f.mustOpen(u, fmt.Sprintf("d%d", d))
		}
		held[u.UserID] = 20 * i
	}
	wholeHashes := func(fn func()) int {
		require.NoError(t, c.ConfigResetStat(f.ctx).Err())
		fn()
		calls := commandCalls(t, c)
		return calls["hgetall"] + calls["hvals"] + calls["hkeys"]
	}
	settings := wholeHashes(func() {
		_, err := f.b.Settings(f.ctx, f.acct)
		require.NoError(t, err)
	})
	var us []protocol.User
	users := wholeHashes(func() {
		var err error
		us, err = f.b.Users(f.ctx, f.owner)
		require.NoError(t, err)
	})
	require.Len(t, us, 6)
	for _, u := range us {
		require.Equal(t, held[u.ID], u.SeatsHeld, u.Name)
	}
	// the seats hash holds every seat of the account (45 ms of HGETALL at
	// 25,000 seats): the list reads each user's seat count, not all of it,
	// and the users a chunk at a time (HSCAN)
	require.Equal(t, settings, users, "the user list read whole hashes besides the account's")
}

func TestAnAccountKeepsAtMostRetainMaxEndedSessions(t *testing.T) {
	t.Parallel()
	f := newFixture(t, testredis.Client(t), setup{seats: 5, cfg: func(c *broker.Config) {
		longTimers(c)
		c.Retention = time.Hour
		c.RetainMax = 50
	}})
	u := f.user("ann", nil)
	var ids []string
	for range 120 { // a client that opens and closes in a loop
		g := f.mustOpen(u, "d1")
		f.close(u, g.Session.ID)
		ids = append(ids, g.Session.ID)
	}
	_, total, err := f.b.Sessions(f.ctx, f.owner, broker.SessionFilter{States: []string{protocol.StateEnded}})
	require.NoError(t, err)
	require.Equal(t, 50, total, "ended sessions kept")
	// the newest are kept, the first to end went early
	require.Equal(t, protocol.StateEnded, f.state(ids[len(ids)-1]).State)
	require.Equal(t, protocol.StateEnded, f.state(ids[len(ids)-50]).State)
	_, err = f.b.Session(f.ctx, f.owner, ids[0])
	require.ErrorIs(t, err, broker.ErrNotFound)
}

func TestAUserHoldsAtMostAHundredTokens(t *testing.T) {
	t.Parallel()
	c := testredis.Client(t)
	f := newFixture(t, c, setup{seats: 5})
	u := f.user("ann", nil)
	var toks []string
	for i := range broker.MaxUserTokens + 20 { // a client that signs in in a loop, keeping nothing
		tok, err := f.b.IssueToken(f.ctx, u, time.Hour+time.Duration(i)*time.Second, "")
		require.NoError(t, err)
		toks = append(toks, tok.Token)
	}
	// the newest work; those that would expire first were revoked
	for i, tok := range toks {
		_, err := f.b.Authenticate(f.ctx, tok, broker.TokenClient)
		if i < 20 {
			require.ErrorIs(t, err, broker.ErrUnauthorized, "token %d", i)
		} else {
			require.NoError(t, err, "token %d", i)
		}
	}
	n, err := c.HLen(f.ctx, f.b.Config().Prefix+":{"+f.acct+"}:tokens").Result()
	require.NoError(t, err)
	require.Equal(t, int64(broker.MaxUserTokens), n, "tokens the account keeps")
}

func TestReconcileReadsTheLedgerAPartAtATime(t *testing.T) {
	t.Parallel()
	c := privateRedis(t)
	f := newFixture(t, c, setup{seats: 0, ppu: true})
	const n = 2500 // the ledger only grows: a minute an entry, for ever
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				_, err := f.b.TopUp(f.ctx, f.owner, 1, "", "")
				assert.NoError(t, err)
			}
		}()
	}
	wg.Wait()
	require.NoError(t, c.ConfigResetStat(f.ctx).Err())
	r, err := f.b.Reconcile(f.ctx, f.owner)
	require.NoError(t, err)
	require.True(t, r.OK, "%+v", r)
	require.Equal(t, int64(n), r.Entries)
	require.Equal(t, int64(n), r.TopUps)
	// no one command read the whole ledger
	require.GreaterOrEqual(t, commandCalls(t, c)["lrange"], n/broker.LedgerChunk)
}

func TestReconcileCountsAMinuteBilledTwice(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c redis.UniversalClient) {
		f := newFixture(t, c, setup{seats: 0, ppu: true})
		f.topUp(10)
		f.mustOpen(f.user("ann", nil), "d1")
		key := f.b.Config().Prefix + ":{" + f.acct + "}:ledger"
		minute, err := c.LIndex(f.ctx, key, -1).Result()
		require.NoError(t, err)
		require.Contains(t, minute, `"minute"`)
		// damage: the same (session, minute) a second time
		require.NoError(t, c.RPush(f.ctx, key, minute).Err())
		r, err := f.b.Reconcile(f.ctx, f.owner)
		require.NoError(t, err)
		require.Equal(t, 1, r.Duplicates)
		require.False(t, r.OK)
	})
}

func TestAnAccountHasAtMostMaxUsersUsers(t *testing.T) {
	t.Parallel()
	f := newFixture(t, testredis.Client(t), setup{seats: 5, cfg: func(c *broker.Config) { c.MaxUsers = 3 }})
	ann := f.user("ann", nil)
	f.user("bob", nil) // with the owner, three
	before := f.snapshot()
	_, err := f.b.AddUser(f.ctx, f.owner, broker.UserSpec{Name: "cid"})
	require.ErrorIs(t, err, broker.ErrInvalid)
	var ie *broker.InvalidError
	require.ErrorAs(t, err, &ie)
	require.Equal(t, "users", ie.Field)
	require.Equal(t, before, f.snapshot(), "a refused user changes nothing")
	// changing a user still works at the bound
	name := "ann2"
	_, err = f.b.UpdateUser(f.ctx, f.owner, ann.UserID, broker.UserPatch{Name: &name})
	require.NoError(t, err)
}

// "Sign out everywhere" reads the user's own tokens, not the account's: in
// an account of thousands of users it used to read (and decode) every
// token of every user to find one user's few. A record of another user
// that cannot be decoded shows which were read: revoking ann's tokens
// must neither trip on it nor touch bob's.
func TestSignOutEverywhereReadsOnlyThatUsersTokens(t *testing.T) {
	t.Parallel()
	c := testredis.Client(t)
	f := newFixture(t, c, setup{seats: 5})
	ann, bob := f.user("ann", nil), f.user("bob", nil)
	var annToks, bobToks []string
	for range 3 {
		a, err := f.b.IssueToken(f.ctx, ann, time.Hour, "")
		require.NoError(t, err)
		annToks = append(annToks, a.Token)
		b, err := f.b.IssueToken(f.ctx, bob, time.Hour, "")
		require.NoError(t, err)
		bobToks = append(bobToks, b.Token)
	}
	tokens := f.b.Config().Prefix + ":{" + f.acct + "}:tokens"
	require.NoError(t, c.HSet(f.ctx, tokens, "someone-elses", "{not json").Err())

	n, err := f.b.RevokeUserTokens(f.ctx, ann, ann.UserID)
	require.NoError(t, err)
	require.Equal(t, 3, n, "ann's tokens revoked")
	for _, tok := range annToks {
		_, err := f.b.Authenticate(f.ctx, tok, broker.TokenClient)
		require.ErrorIs(t, err, broker.ErrUnauthorized)
	}
	for _, tok := range bobToks {
		_, err := f.b.Authenticate(f.ctx, tok, broker.TokenClient)
		require.NoError(t, err, "bob's tokens still work")
	}
	left, err := c.HLen(f.ctx, tokens).Result()
	require.NoError(t, err)
	require.Equal(t, int64(3+1), left, "the account's list keeps bob's (and the odd record)")
}
