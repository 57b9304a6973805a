package broker_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seatbroker/seatbroker/broker"
	"github.com/seatbroker/seatbroker/broker/internal/rdb"
	"github.com/seatbroker/seatbroker/broker/protocol"
	"github.com/seatbroker/seatbroker/internal/testredis"
)

// TestBillingIsExactWithThreeNodesMetering: three broker nodes meter one
// account for many billing periods while sessions start, pause, resume,
// get promoted and end at random. The ledger sums to the balance, no
// (session, minute) appears twice, and every started minute of PPU active
// time (reconstructed from the account's event log) is billed once.
func TestBillingIsExactWithThreeNodesMetering(t *testing.T) {
	billingRun(t, 1_000_000, 0)
}

// TestBillingIsExactWhileTheBalanceRunsOutAndIsToppedUp: the same, but the
// balance stays low: it runs out again and again (every PPU session gets
// the notice) and small top-ups bring it back. Every grant on PPU then
// first bills the minutes that started before it (docs/design.md, "PPU
// minutes"), from three nodes at once.
func TestBillingIsExactWhileTheBalanceRunsOutAndIsToppedUp(t *testing.T) {
	billingRun(t, 20, 120)
}

// billingRun runs the load of the billing tests: the balance starts at
// topUp, and when more is not 0 a top-up of that many minutes follows
// every 400 ms.
func billingRun(t *testing.T, topUp, more int64) {
	const (
		workers = 24
		run     = 3 * time.Second
	)
	client := testredis.Client(t)
	cfg := fastConfig(testredis.Prefix(t))
	cfg.Minute = 100 * time.Millisecond
	cfg.Lease = 400 * time.Millisecond
	cfg.Heartbeat = 100 * time.Millisecond
	cfg.Notice = 250 * time.Millisecond
	cfg.Standby = 300 * time.Millisecond
	cfg.Paused = 500 * time.Millisecond
	nodes := []*broker.Broker{startBroker(t, client, cfg), startBroker(t, client, cfg), startBroker(t, client, cfg)}
	f := accountOn(t, nodes[0], setup{seats: 3, ppu: true})
	var ps []broker.Principal
	for i := range 8 {
		ps = append(ps, f.user(fmt.Sprintf("u%d", i), nil))
	}
	keys := rdb.NewKeys(cfg.Prefix)
	sub := client.Subscribe(context.Background(), keys.Channel(f.acct))
	defer sub.Close()
	_, err := sub.Receive(context.Background())
	require.NoError(t, err)
	log := newPPULog()
	logDone := make(chan struct{})
	const drained = "test: the run is over"
	go func() {
		defer close(logDone)
		for m := range sub.Channel() {
			if m.Payload == drained {
				return
			}
			b, err := keys.DecodeEvents(m.Channel, m.Payload)
			if err != nil {
				t.Errorf("an event the log cannot read (the model would miss it): %v: %s", err, m.Payload)
				continue
			}
			for _, e := range b.Events {
				if e.Type == "session" && e.Session != nil {
					log.apply(e.Session)
				}
			}
		}
	}()
	f.topUp(topUp)

	ctx, cancel := context.WithTimeout(context.Background(), run)
	defer cancel()
	var wg sync.WaitGroup
	var topped int64 // minutes topped up during the run
	if more > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(400 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
					if _, err := nodes[0].TopUp(context.Background(), f.owner, more, "", "test"); err != nil {
						t.Errorf("top-up: %v", err)
						return
					}
					topped += more // (read after wg.Wait)
				}
			}
		}()
	}
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 11))
			node := nodes[w%3]
			type held struct {
				id, fence string
				u         broker.Principal
			}
			var mine []held
			for ctx.Err() == nil {
				u := ps[rng.IntN(len(ps))]
				// (with a low balance a worker holds three sessions at
				// most: their minutes, not new grants, use the top-ups up)
				if len(mine) == 0 || rng.IntN(4) == 0 && (more == 0 || len(mine) < 3) {
					g, err := node.Open(ctx, broker.OpenRequest{Account: f.acct, UserID: u.UserID, DeviceID: fmt.Sprintf("d%d", rng.IntN(2))})
					if err == nil {
						mine = append(mine, held{g.Session.ID, g.Fence, u})
					} else if more > 0 {
						// refused (the balance ran out): the sessions
						// running use the next top-up, minutes at a time
						time.Sleep(time.Duration(20+rng.IntN(60)) * time.Millisecond)
					}
					continue
				}
				i := rng.IntN(len(mine))
				h := mine[i]
				switch rng.IntN(8) {
				case 0:
					_, _ = node.Pause(ctx, f.acct, h.u.UserID, h.id, h.fence)
				case 1:
					if g, err := node.Resume(ctx, f.acct, h.u.UserID, h.id); err == nil {
						mine[i].fence = g.Fence
					}
				case 2:
					_, _ = node.CloseSession(ctx, f.acct, h.u.UserID, h.u.Name, h.id, h.fence)
					mine = append(mine[:i], mine[i+1:]...)
				case 3:
					_, _ = node.EndSessions(ctx, f.owner, []string{h.id})
				default:
					_, _ = node.Renew(ctx, f.acct, h.u.UserID, []broker.SessionRef{{ID: h.id, Fence: h.fence}})
					time.Sleep(time.Duration(rng.IntN(20)) * time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
	require.Eventually(t, func() bool {
		o, err := nodes[2].OverviewOf(context.Background(), f.acct)
		return err == nil && o.InUse == 0 && o.PPUSessions == 0
	}, 3*time.Second, 20*time.Millisecond, "everything ends once the clients are gone")
	// Redis delivers a channel's messages in the order it ran the PUBLISHes,
	// so once this one arrives the log has every event of the run.
	require.NoError(t, client.Publish(context.Background(), keys.Channel(f.acct), drained).Err())
	<-logDone
	require.NoError(t, sub.Close())
	require.Empty(t, log.open, "a PPU stretch never closed in the event log")

	var entries []protocol.LedgerEntry
	for {
		page, total, err := nodes[1].Ledger(context.Background(), f.owner, int64(len(entries)), 1000)
		require.NoError(t, err)
		entries = append(entries, page...)
		if int64(len(entries)) >= total {
			break
		}
	}
	o := f.overview()
	var sum int64
	billed := map[string]int64{}
	billedAt := map[string][]int64{}
	seen := map[string]bool{}
	for _, e := range entries {
		sum += e.Delta
		if e.Kind != "minute" {
			continue
		}
		key := fmt.Sprintf("%s/%d", e.SessionID, e.Minute)
		require.False(t, seen[key], "(session, minute) billed twice: %s", key)
		seen[key] = true
		billed[e.SessionID]++
		billedAt[e.SessionID] = append(billedAt[e.SessionID], e.At.UnixMilli())
	}
	assert.Equal(t, o.PPUBalance, sum, "the ledger sums to the balance")
	assert.Equal(t, topUp+topped-int64(len(seen)), o.PPUBalance)

	minute := cfg.Minute.Milliseconds()
	wrong := 0
	for sid, ss := range log.stretches {
		want := startedMinutes(ss, minute, nil)
		// A minute that starts at the very instant the balance runs out:
		// the minutes that start at one instant are billed one by one,
		// and the one that takes the last of the balance is billed while
		// the others are not; the notice then ends every stretch at that
		// instant (docs/design.md, "PPU minutes"). So a stretch the
		// balance's end ended may count its end instant's minute.
		most := startedMinutes(ss, minute, log.exhEnd[sid])
		if billed[sid] < want || billed[sid] > most {
			wrong++
			t.Errorf("session %s: billed %d minutes (at %v), started %d (stretches %v); its events: %q",
				sid, billed[sid], billedAt[sid], want, ss, log.history[sid])
		}
	}
	for sid := range billed {
		if _, ok := log.stretches[sid]; !ok {
			t.Errorf("session %s billed without PPU active time (at %v); its events: %q", sid, billedAt[sid], log.history[sid])
		}
	}
	t.Logf("%d sessions ran on PPU, %d minutes billed, %d wrong, %d minutes topped up, %d exhaustions",
		len(log.stretches), len(seen), wrong, topped, log.exhausted)
	assert.Greater(t, len(seen), 100, "the load must bill many minutes")
	if more > 0 {
		assert.Greater(t, log.exhausted, 10, "the balance must run out again and again")
	}
}

// ppuLog rebuilds each session's PPU active stretches from the session
// events an account published, in order.
type ppuLog struct {
	stretches map[string][][2]int64   // session -> PPU active stretches [from, to)
	open      map[string]int64        // session -> start of its running stretch
	promoted  map[string]int64        // session -> its last promotion seen
	history   map[string][]string     // session -> its events, for a failure's message
	noticed   map[string]bool         // sessions the balance's end gave the notice
	exhEnd    map[string]map[int]bool // session -> its stretches that the balance's end ended
	last      map[string]string       // session -> its state in its last event
	exhausted int                     // len(noticed)
}

func newPPULog() *ppuLog {
	return &ppuLog{stretches: map[string][][2]int64{}, open: map[string]int64{}, promoted: map[string]int64{},
		history: map[string][]string{}, noticed: map[string]bool{}, exhEnd: map[string]map[int]bool{},
		last: map[string]string{}}
}

// apply takes the next event of session s.
func (l *ppuLog) apply(s *rdb.SessionRec) {
	l.history[s.ID] = append(l.history[s.ID], fmt.Sprintf("%s/%s at=%d billed=%d ppu_ms=%d ppu_at=%d promoted=%d",
		s.State, s.Kind, s.At, s.Billed, s.PPUms, s.PPUAt, s.Promoted))
	if s.Reason == "ppu_exhausted" && !l.noticed[s.ID] {
		l.noticed[s.ID] = true
		l.exhausted++
	}
	onPPU := s.State == protocol.StateActive && s.Kind == protocol.KindPPU
	from, running := l.open[s.ID]
	promoted := s.Promoted != 0 && s.Promoted != l.promoted[s.ID]
	l.promoted[s.ID] = s.Promoted
	// a session on notice is never granted again: a promotion of its key
	// then only moves the seat (billing stopped with the notice)
	onNotice := l.last[s.ID] == protocol.StateTerminating
	l.last[s.ID] = s.State
	switch {
	case onPPU && !running:
		l.open[s.ID] = s.At
	case !onPPU && running:
		// One call of the account code publishes a session once,
		// as it is at the end: a promotion by the call's catch-up
		// and a close by one of its operations come as one ended
		// event. The promotion's time is in the session.
		end := s.At
		if s.Kind == protocol.KindPrepaid && s.Promoted > from && s.Promoted < end {
			end = s.Promoted
		}
		if s.State == protocol.StateTerminating && s.Reason == "ppu_exhausted" {
			if l.exhEnd[s.ID] == nil {
				l.exhEnd[s.ID] = map[int]bool{}
			}
			l.exhEnd[s.ID][len(l.stretches[s.ID])] = true
		}
		l.stretches[s.ID] = append(l.stretches[s.ID], [2]int64{from, end})
		delete(l.open, s.ID)
	case !running && len(l.history[s.ID]) == 1 && s.State == protocol.StateTerminating &&
		s.Kind == protocol.KindPPU && s.Reason == "ppu_exhausted" && s.Billed > 0:
		// First seen on notice, a minute billed: its grant took the last
		// minute, and the same call gave every PPU session the notice, the
		// new one included (docs/design.md, "PPU minutes"). It ran on PPU
		// for no time, and its grant started a minute.
		l.stretches[s.ID] = append(l.stretches[s.ID], [2]int64{s.At, s.At})
	case !onPPU && !running && promoted && !onNotice:
		// Promoted with no PPU stretch seen: an operation of the call
		// granted it on PPU (open, join, resume) and a later one freed a
		// seat, all at the call's one instant. It ran on PPU for no time,
		// and that grant started a minute if it began on one
		// (docs/design.md).
		l.stretches[s.ID] = append(l.stretches[s.ID], [2]int64{s.Promoted, s.Promoted})
	}
}

// A session granted on PPU and promoted by a later operation of the same
// call has one event, as the call left it: prepaid, promoted at the
// instant it opened, its first minute billed (rdb's
// TestGrantOnPPUPromotedInTheSameCallPaysItsFirstMinute). The log sees a
// PPU stretch of length 0 in it, which starts a minute.
func TestBillingLogSeesAGrantOnPPUPromotedInTheSameCall(t *testing.T) {
	const t0, minute = 1_764_000_000_000, 100
	log := newPPULog()
	log.apply(&rdb.SessionRec{ID: "s1", State: protocol.StateActive, Kind: protocol.KindPrepaid,
		Created: t0, Activated: t0, At: t0, Promoted: t0, Billed: 1})
	log.apply(&rdb.SessionRec{ID: "s1", State: protocol.StateEnded, Kind: protocol.KindPrepaid,
		Created: t0, Activated: t0, At: t0 + 500, Promoted: t0, Billed: 1})
	require.Empty(t, log.open)
	require.Equal(t, [][2]int64{{t0, t0}}, log.stretches["s1"])
	assert.Equal(t, int64(1), startedMinutes(log.stretches["s1"], minute, nil))
}

// A session that stretches on PPU, is promoted, and later is granted on
// PPU again and promoted in one call has two stretches; a session only
// ever on a prepaid seat has none.
func TestBillingLogKeepsPromotionsApart(t *testing.T) {
	const t0 = 1_764_000_000_000
	log := newPPULog()
	s := rdb.SessionRec{ID: "s1", State: protocol.StateActive, Kind: protocol.KindPPU, At: t0, PPUAt: t0, Billed: 1}
	log.apply(&s)
	s.Kind, s.Promoted, s.At, s.PPUAt, s.PPUms = protocol.KindPrepaid, t0+50, t0+50, 0, 50
	log.apply(&s)
	s.State, s.At = protocol.StatePaused, t0+70
	log.apply(&s)
	s.State, s.At, s.Promoted = protocol.StateActive, t0+90, t0+90
	log.apply(&s) // resumed on PPU, promoted in the same call
	s.State, s.At = protocol.StateEnded, t0+95
	log.apply(&s)
	require.Equal(t, [][2]int64{{t0, t0 + 50}, {t0 + 90, t0 + 90}}, log.stretches["s1"])
	log.apply(&rdb.SessionRec{ID: "s2", State: protocol.StateActive, Kind: protocol.KindPrepaid, At: t0})
	log.apply(&rdb.SessionRec{ID: "s2", State: protocol.StateEnded, Kind: protocol.KindPrepaid, At: t0 + 5})
	require.NotContains(t, log.stretches, "s2")
}

// startedMinutes counts the PPU minutes that started in a session's active
// stretches: minute k starts when the accumulated active time reaches k
// minutes inside a stretch [from, to), or when a stretch begins exactly
// there.
func startedMinutes(ss [][2]int64, minute int64, endIn map[int]bool) int64 {
	var acc, n, next int64 // next: start of the next minute, in accumulated time
	for i, s := range ss {
		a, b := acc, acc+(s[1]-s[0])
		for next < b || next == a && a == b || endIn[i] && next == b {
			n++
			next += minute
		}
		acc = b
	}
	return n
}

// A key on notice (the balance ran out) that is promoted to a freed
// prepaid seat only moves the seat: its sessions were not granted again,
// and it adds no PPU stretch (here the second minute would start at the
// instant the notice began, and is not billed).
func TestBillingLogAddsNoStretchForAPromotionOnNotice(t *testing.T) {
	const t0, minute = 1_764_000_000_000, 100
	log := newPPULog()
	s := rdb.SessionRec{ID: "s1", State: protocol.StateActive, Kind: protocol.KindPPU, At: t0, PPUAt: t0, Billed: 1}
	log.apply(&s)
	s.State, s.At, s.PPUAt, s.PPUms, s.Reason = protocol.StateTerminating, t0+minute, 0, minute, "ppu_exhausted"
	log.apply(&s)
	s.Kind, s.At, s.Promoted = protocol.KindPrepaid, t0+150, t0+150
	log.apply(&s)
	require.Equal(t, [][2]int64{{t0, t0 + minute}}, log.stretches["s1"])
	assert.Equal(t, int64(1), startedMinutes(log.stretches["s1"], minute, nil))
}
