package broker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seatbroker/seatbroker/broker"
	"github.com/seatbroker/seatbroker/broker/internal/rdb"
	"github.com/seatbroker/seatbroker/broker/protocol"
	"github.com/seatbroker/seatbroker/internal/testredis"
)

// TestInvariantsUnderConcurrentLoadOnTwoNodes: 64 goroutines on two broker
// nodes sharing one Redis open, join, pause, resume, end, close and let
// leases lapse at random. At every step prepaid seats in use never exceed
// the account's seats and no seat key holds two seats, checked both from
// atomic snapshots of the store and from the account's event log replayed
// in order; every grant's fencing token is new and larger than the
// session's previous one.
func TestInvariantsUnderConcurrentLoadOnTwoNodes(t *testing.T) {
	const (
		workers = 64
		seats   = 6
		users   = 10
		run     = 4 * time.Second
	)
	client := testredis.Client(t)
	cfg := fastConfig(testredis.Prefix(t))
	cfg.Lease = 400 * time.Millisecond
	cfg.Heartbeat = 100 * time.Millisecond
	cfg.Notice = 300 * time.Millisecond
	cfg.Standby = 500 * time.Millisecond
	cfg.Minute = 250 * time.Millisecond
	nodes := []*broker.Broker{startBroker(t, client, cfg), startBroker(t, client, cfg)}
	f := accountOn(t, nodes[0], setup{seats: seats, ppu: true})
	f.topUp(1_000_000)
	var ps []broker.Principal
	for i := range users {
		var limit *int
		if i%3 == 0 {
			limit = intp(2)
		}
		ps = append(ps, f.user(fmt.Sprintf("u%d", i), limit))
	}
	keys := rdb.NewKeys(cfg.Prefix)
	ctx, cancel := context.WithTimeout(context.Background(), run)
	defer cancel()

	// The event log, subscribed before any load starts.
	sub := client.Subscribe(context.Background(), keys.Channel(f.acct))
	defer sub.Close()
	_, err := sub.Receive(context.Background())
	require.NoError(t, err)
	logDone := make(chan error, 1)
	var batches atomic.Int64
	go func() { logDone <- replayEventLog(keys, sub.Channel(), seats, &batches) }()

	var grants sync.Map // fence -> session id: every fence must be new
	// Sessions any worker opened lately: workers also act on others'
	// sessions (as the session's user, like a second client of it), so one
	// call of the account code mixes operations of one session from
	// several callers.
	type held struct {
		id, fence string
		user      broker.Principal
		code      string
		lapse     bool
	}
	var (
		sharedMu sync.Mutex
		recent   []held
	)
	var fenceErr atomic.Value
	var ops, denials atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			node := nodes[w%2]
			var mine []held
			lastFence := map[string]string{}
			grant := func(h held) {
				if prev, ok := grants.LoadOrStore(h.fence, h.id); ok {
					fenceErr.Store(fmt.Sprintf("fence %s granted twice (%v, %s)", h.fence, prev, h.id))
				}
				if old, ok := lastFence[h.id]; ok && !(len(h.fence) > len(old) || len(h.fence) == len(old) && h.fence > old) {
					fenceErr.Store(fmt.Sprintf("fence of %s went from %s to %s", h.id, old, h.fence))
				}
				lastFence[h.id] = h.fence
			}
			for ctx.Err() == nil {
				ops.Add(1)
				u := ps[rng.IntN(len(ps))]
				switch op := rng.IntN(10); {
				case op < 3 || len(mine) == 0:
					g, err := node.Open(ctx, broker.OpenRequest{Account: f.acct, UserID: u.UserID,
						DeviceID: fmt.Sprintf("dev%d", rng.IntN(3)), WithCode: rng.IntN(3) == 0})
					if err != nil {
						denials.Add(1)
						continue
					}
					h := held{id: g.Session.ID, fence: g.Fence, user: u, code: g.Session.Code, lapse: rng.IntN(4) == 0}
					grant(h)
					mine = append(mine, h)
					sharedMu.Lock()
					recent = append(recent, h)
					if len(recent) > 6 {
						recent = recent[1:]
					}
					sharedMu.Unlock()
				default:
					i := rng.IntN(len(mine))
					h := mine[i]
					if op >= 3 && op <= 5 && rng.IntN(4) != 0 {
						// join, pause or resume a session another worker
						// may be acting on too
						sharedMu.Lock()
						i, h = -1, recent[rng.IntN(len(recent))]
						sharedMu.Unlock()
					}
					switch op {
					case 3:
						if h.code != "" {
							_, _, _ = node.Join(ctx, h.code, fmt.Sprintf("src%d", w))
						}
					case 4:
						_, _ = node.Pause(ctx, f.acct, h.user.UserID, h.id, h.fence)
					case 5:
						if g, err := node.Resume(ctx, f.acct, h.user.UserID, h.id); err == nil {
							h.fence = g.Fence
							grant(h)
							if i >= 0 {
								mine[i].fence = g.Fence
							}
						}
					case 6:
						_, _ = node.EndSessions(ctx, f.owner, []string{h.id})
					case 7:
						_, _ = node.CloseSession(ctx, f.acct, h.user.UserID, h.user.Name, h.id, h.fence)
						mine = append(mine[:i], mine[i+1:]...)
					default:
						var refs []broker.SessionRef
						for _, m := range mine {
							if !m.lapse && m.user.UserID == h.user.UserID {
								refs = append(refs, broker.SessionRef{ID: m.id, Fence: m.fence})
							}
						}
						_, _ = node.Renew(ctx, f.acct, h.user.UserID, refs)
					}
				}
				if len(mine) > 12 {
					mine = mine[1:] // forget the oldest: its lease lapses
				}
			}
		}()
	}

	// The store checker: atomic snapshots while the load runs.
	checks := 0
	for ctx.Err() == nil {
		checkStoreSnapshot(t, client, keys, f.acct, seats)
		checks++
		time.Sleep(20 * time.Millisecond)
	}
	wg.Wait()
	// let every lease, notice and standby time run out: the account drains
	require.Eventually(t, func() bool {
		o, err := nodes[1].OverviewOf(context.Background(), f.acct)
		return err == nil && o.InUse == 0 && o.PPUSessions == 0
	}, 3*time.Second, 20*time.Millisecond, "every seat comes back when the clients are gone")
	checkStoreSnapshot(t, client, keys, f.acct, seats)
	require.NoError(t, sub.Close())
	require.NoError(t, <-logDone)
	if v := fenceErr.Load(); v != nil {
		t.Fatal(v)
	}
	t.Logf("%d operations (%d denied), %d store checks, %d event batches replayed", ops.Load(), denials.Load(), checks, batches.Load())
	assert.Greater(t, denials.Load(), int64(0), "the load must reach the limits to test them")
	assert.Greater(t, batches.Load(), int64(100))
}

// checkStoreSnapshot reads the account's seats and sessions in one MULTI
// and checks the seat invariants on that consistent state.
func checkStoreSnapshot(t *testing.T, c *redis.Client, keys rdb.Keys, acct string, seats int64) {
	t.Helper()
	ctx := context.Background()
	var acctCmd, seatsCmd, sessCmd *redis.MapStringStringCmd
	_, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		acctCmd = p.HGetAll(ctx, keys.AccountHash(acct))
		seatsCmd = p.HGetAll(ctx, keys.Seats(acct))
		sessCmd = p.HGetAll(ctx, keys.Sessions(acct))
		return nil
	})
	require.NoError(t, err)
	var used int64
	_, _ = fmt.Sscan(acctCmd.Val()["used"], &used)
	prepaid := int64(0)
	seatOf := map[string]rdb.SeatHolder{}
	userSets := map[string]map[string]bool{} // user id -> its seat keys, as the store keeps them
	pausedOf := map[string]string{}          // session id -> the user whose paused list names it
	for key, raw := range seatsCmd.Val() {
		if uid, ok := rdb.SeatsFieldUser(key); ok {
			set := map[string]bool{}
			for _, k := range rdb.ParseUserSeats(raw) {
				require.False(t, set[k], "user %s's set names seat %s twice", uid, k)
				set[k] = true
			}
			userSets[uid] = set
			continue
		}
		if uid, ok := rdb.SeatsFieldPaused(key); ok {
			require.NotEmpty(t, raw, "user %s has an empty paused list", uid)
			for _, sid := range strings.Split(raw, " ") {
				require.False(t, pausedOf[sid] != "", "session %s is listed paused twice", sid)
				pausedOf[sid] = uid
			}
			continue
		}
		s, err := rdb.ParseSeat(key, raw)
		require.NoError(t, err)
		seatOf[key] = s
		if s.Kind == protocol.KindPrepaid {
			prepaid++
		}
	}
	// each user's seat set is exactly the seats it holds (max_seats counts it)
	for key, s := range seatOf {
		require.True(t, userSets[s.User][key], "seat %s is missing from its user's set", key)
	}
	for uid, set := range userSets {
		require.NotEmpty(t, set, "user %s has an empty seat set", uid)
		for key := range set {
			require.Equal(t, uid, seatOf[key].User, "user %s's set names seat %s it does not hold", uid, key)
		}
	}
	require.LessOrEqual(t, prepaid, seats, "prepaid seats in use exceed the account's seats")
	require.Equal(t, used, prepaid, "the in-use counter matches the seats held")
	holding := map[string]string{} // session id -> its seat key, for those that hold one
	for _, raw := range sessCmd.Val() {
		var s rdb.SessionRec
		require.NoError(t, json.Unmarshal([]byte(raw), &s))
		// a paused session is in its user's paused list, and only a paused one
		if s.State == protocol.StatePaused {
			require.Equal(t, s.User, pausedOf[s.ID], "paused session %s is missing from its user's paused list", s.ID)
		} else {
			require.Empty(t, pausedOf[s.ID], "session %s is %s but listed paused", s.ID, s.State)
		}
		delete(pausedOf, s.ID)
		if s.State != protocol.StateStandby && s.State != protocol.StateActive && s.State != protocol.StateTerminating {
			continue
		}
		key := s.User + "|" + s.Device // the counting mode is user_device
		st, ok := seatOf[key]
		require.True(t, ok, "session %s holds seat %q that does not exist", s.ID, key)
		require.Equal(t, st.Kind, s.Kind, "session %s kind differs from its seat", s.ID)
		require.Equal(t, st.User, s.User, "session %s is not its seat's user's", s.ID)
		require.Contains(t, st.SIDs, s.ID)
		holding[s.ID] = key
	}
	require.Empty(t, pausedOf, "paused lists name sessions that do not exist")
	// and a seat lists only sessions that hold it
	for key, st := range seatOf {
		require.NotEmpty(t, st.SIDs, "seat %s is held by no session", key)
		seen := map[string]bool{}
		for _, sid := range st.SIDs {
			require.False(t, seen[sid], "seat %s lists session %s twice", key, sid)
			seen[sid] = true
			require.Equal(t, key, holding[sid], "seat %s lists session %s, which does not hold it", key, sid)
		}
	}
}

// replayEventLog applies the account's events in publication order (Redis's
// execution order) and checks at the end of each run of the account code
// that prepaid keys never exceed seats and that every key is held as one
// seat of one kind.
func replayEventLog(keys rdb.Keys, ch <-chan *redis.Message, seats int64, batches *atomic.Int64) error {
	type state struct{ key, kind string }
	holding := map[string]state{} // session id -> its seat while it holds one
	for m := range ch {
		b, err := keys.DecodeEvents(m.Channel, m.Payload)
		if err != nil {
			return err
		}
		for _, e := range b.Events {
			if e.Type != "session" || e.Session == nil {
				continue
			}
			s := e.Session
			switch s.State {
			case protocol.StateStandby, protocol.StateActive, protocol.StateTerminating:
				holding[s.ID] = state{key: s.User + "|" + s.Device, kind: s.Kind}
			default:
				delete(holding, s.ID)
			}
		}
		if !b.End {
			continue // a session of a run whose messages go on
		}
		batches.Add(1)
		kinds := map[string]string{}
		prepaid := int64(0)
		for id, st := range holding {
			if k, ok := kinds[st.key]; ok {
				if k != st.kind {
					return fmt.Errorf("key %s held as %s and %s (session %s)", st.key, k, st.kind, id)
				}
				continue
			}
			kinds[st.key] = st.kind
			if st.kind == protocol.KindPrepaid {
				prepaid++
			}
		}
		if prepaid > seats {
			return fmt.Errorf("event log: %d prepaid keys held, seats %d", prepaid, seats)
		}
	}
	return nil
}
