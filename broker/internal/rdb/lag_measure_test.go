//go:build measure

package rdb

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/seatbroker/seatbroker/internal/testredis"
)

// TestMeasureGrantOnPPUWhileCatchUpIsBehind is a measurement run by hand,
// not a check: n paused sessions run out of their paused time at once, so
// catch-up is behind (100 timers a call), while 10 sessions run on PPU with
// a low balance; each grant on PPU then bills the minutes that started
// before it (bill_started), looking at the sessions on PPU (fewer here
// than the timers due by its instant).
// SEATBROKER_PAUSED=3000 go test -tags measure -run TestMeasureGrantOnPPUWhileCatchUpIsBehind -v ./broker/internal/rdb/
func TestMeasureGrantOnPPUWhileCatchUpIsBehind(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("SEATBROKER_PAUSED"))
	if n == 0 {
		n = 3000
	}
	ctx := context.Background()
	c := testredis.Client(t)
	const paused = 3 * time.Second
	s := New(c, testredis.Prefix(t), Defaults{Lease: time.Hour, Standby: time.Hour, Paused: paused,
		Notice: time.Hour, Minute: time.Hour, Retention: time.Hour})
	t.Cleanup(s.Close)
	require.NoError(t, s.LoadScripts(ctx))
	require.NoError(t, s.CreateAccount(ctx, "acme", map[string]string{"seats": strconv.Itoa(n), "ppu": "1"},
		UserRec{ID: "owner", Name: "owner", Role: "owner", Status: "active"}))
	users := (n + 99) / 100
	for i := range users {
		id := "u" + strconv.Itoa(i)
		_, err := s.PutUser(ctx, "acme", UserRec{ID: id, Name: id, Role: "member", Status: "active"}, true, 100000)
		require.NoError(t, err)
	}
	for _, o := range []string{opOpen, opPause} {
		for i := 0; i < n; i += 100 {
			var calls []*call
			for j := i; j < i+100 && j < n; j++ {
				sid, uid := fmt.Sprintf("s%d", j), "u"+strconv.Itoa(j/100)
				if o == opOpen {
					calls = append(calls, openOp(sid, uid, fmt.Sprintf("d%d", j%100)))
				} else {
					calls = append(calls, op("acme", opPause, sid, uid, ""))
				}
			}
			for _, r := range runBatch(t, s, calls...) {
				require.NoError(t, r.err)
				require.Equal(t, StatusOK, r.res.Status, string(r.res.Payload))
			}
		}
	}
	setSeats(t, s, 0)
	_, _, err := s.TopUp(ctx, "acme", 22, "k1", "owner", "")
	require.NoError(t, err)
	for i := range 10 {
		r, err := s.Open(ctx, "acme", fmt.Sprintf("p%d", i), "owner", fmt.Sprintf("p%d", i), "host", "")
		require.NoError(t, err)
		require.Equal(t, StatusOK, r.Status)
	}
	time.Sleep(paused + 500*time.Millisecond)
	require.NoError(t, c.ConfigSet(ctx, "slowlog-max-len", "100000").Err())
	require.NoError(t, c.ConfigSet(ctx, "slowlog-log-slower-than", "0").Err())
	require.NoError(t, c.SlowLogReset(ctx).Err())
	for i := range 10 {
		r, err := s.Open(ctx, "acme", fmt.Sprintf("q%d", i), "owner", fmt.Sprintf("q%d", i), "host", "")
		require.NoError(t, err)
		require.Equal(t, StatusOK, r.Status)
	}
	logs, err := c.SlowLogGet(ctx, 100000).Result()
	require.NoError(t, err)
	var took []time.Duration
	for i := len(logs) - 1; i >= 0; i-- {
		if len(logs[i].Args) > 0 && (logs[i].Args[0] == "fcall" || logs[i].Args[0] == "evalsha") {
			took = append(took, logs[i].Duration)
		}
	}
	t.Logf("%d paused sessions due, 10 on PPU: 10 grants on PPU, each call: %v", n, took)
}
