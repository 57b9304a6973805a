package rdb

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/google/uuid"
)

// BenchmarkRenewCycle is the serial probe of heartbeats: in production a
// desktop client renews its sessions' leases every heartbeat, so renewals,
// not opens and closes, are most of what the account code runs. 64
// sessions are held (one each of 64 users); a cycle is one renewal of one
// session (a heartbeat of a client with one session), 12 to a call, as
// the batcher merges the heartbeats of one account that arrive together.
// It reports Redis's time (and, under callgrind, instructions) per
// renewal, like BenchmarkScriptCycle.
//
//	go test -run '^$' -bench RenewCycle -benchtime 6000x ./broker/internal/rdb/
func BenchmarkRenewCycle(b *testing.B) {
	const per, held = 12, 64
	s, c := probeStore(b)
	ctx := context.Background()
	run := probeRun(b, s)
	type heldSession struct{ uid, list string }
	sessions := make([]heldSession, held)
	opens := make([]*call, held)
	for i := range held {
		uid := probeUser(3, i)
		u := UserRec{ID: uid, Name: fmt.Sprintf("renewer%d", i), Status: "active", Role: "member"}
		if _, err := s.PutUser(ctx, "a1", u, true, 1_000_000); err != nil {
			b.Fatal(err)
		}
		opens[i] = op("a1", opOpen, uuid.NewString(), uid, "desk", "host", "")
	}
	for i, p := range run(opens) {
		var g SessionRec
		if err := json.Unmarshal(p, &g); err != nil || g.Fence == "" {
			b.Fatalf("open: no fence in %s (%v)", p, err)
		}
		sessions[i] = heldSession{uid: g.User, list: renewList([]FenceRef{{ID: g.ID, Fence: g.Fence}})}
	}
	// a session that ended, as in a steady account: its retention marker
	// makes the timers' sorted set a skiplist for good (with only live
	// sessions' timers, up to 128 of them, Redis keeps it as a listpack,
	// where every ZADD scans it: an account between its first opens and
	// its first close)
	uid := probeUser(3, held)
	u := UserRec{ID: uid, Name: "closer", Status: "active", Role: "member"}
	if _, err := s.PutUser(ctx, "a1", u, true, 1_000_000); err != nil {
		b.Fatal(err)
	}
	sid := uuid.NewString()
	run([]*call{op("a1", opOpen, sid, uid, "desk", "host", "")})
	run([]*call{op("a1", opClose, sid, uid, "", uid, "closed")})
	rounds := (b.N + per - 1) / per
	mark := startCycles(b, c)
	for r := range rounds {
		calls := make([]*call, per)
		for i := range per {
			h := sessions[(r*per+i)%held]
			calls[i] = op("a1", opRenew, h.uid, h.list)
		}
		for _, p := range run(calls) {
			var res struct {
				Results List[ItemResult] `json:"results"`
			}
			if err := json.Unmarshal(p, &res); err != nil || len(res.Results) != 1 ||
				res.Results[0].Status != StatusOK || res.Results[0].Session == nil {
				b.Fatalf("renew: %s (%v)", p, err)
			}
		}
	}
	b.StopTimer()
	reportCycles(b, c, mark, rounds*per)
}
