package ws_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seatbroker/seatbroker/broker"
	"github.com/seatbroker/seatbroker/broker/ws"
	"github.com/seatbroker/seatbroker/client"
	"github.com/seatbroker/seatbroker/internal/testredis"
)

// TestLowBalanceWarnsDesktopClientsOfPPUSessions: SPEC.md sends the
// low-balance warning to the desktop clients of PPU sessions.
func TestLowBalanceWarnsDesktopClientsOfPPUSessions(t *testing.T) {
	t.Parallel()
	n, acct := ppuNode(t, 62)
	ctx := context.Background()

	d := dial(t, n.url, desktop(acct.annTok, "dev1"))
	g, err := d.Open(ctx) // on PPU: the first minute is billed, 61 left
	require.NoError(t, err)
	assert.Equal(t, "ppu", g.Session.Kind)
	o := dial(t, n.url, desktop(acct.ownerTok, "dev2"))
	_, err = o.Open(ctx) // 60 left: the warning
	require.NoError(t, err)
	w := waitFor[client.Warning](t, d.Events(), time.Second)
	assert.Equal(t, "ppu_low", w.Code)
	assert.Equal(t, int64(60), w.Balance)
	assert.Equal(t, int64(60), w.Threshold)
}

// TestTheOpenerOfAPPUSessionThatCrossesAThresholdIsWarned: the script that
// bills a new PPU session's first minute publishes the warning it
// crosses, which can reach the node before the open's answer; the
// opener's desktop client, the client of a PPU session, gets it too.
// (Five tries: before the fix the warning was lost in most.)
func TestTheOpenerOfAPPUSessionThatCrossesAThresholdIsWarned(t *testing.T) {
	t.Parallel()
	n, acct := ppuNode(t, 61)
	ctx := context.Background()
	d := dial(t, n.url, desktop(acct.annTok, "dev1"))
	for try := range 5 {
		g, err := d.Open(ctx) // on PPU: its first minute leaves 60
		require.NoError(t, err)
		require.Equal(t, "ppu", g.Session.Kind)
		w := waitFor[client.Warning](t, d.Events(), time.Second)
		assert.Equal(t, int64(60), w.Threshold, "try %d", try)
		_, err = d.CloseSession(ctx, g.Session.ID)
		require.NoError(t, err)
		_, err = n.b.TopUp(ctx, acct.owner, 1, "", "") // 61 again
		require.NoError(t, err)
	}
}

// ppuNode is a node whose low-balance warning is at 60 minutes and whose
// PPU minute lasts an hour, with an account of no prepaid seats, PPU on
// and balance minutes.
func ppuNode(t *testing.T, balance int64) (*node, account) {
	t.Helper()
	cfg := fastConfig(testredis.Prefix(t))
	cfg.LowBalance = []int{60}
	cfg.Minute = time.Hour
	n := startNode(t, redisClient(t), cfg, ws.Options{})
	acct := newAccount(t, n.b, 0)
	on := true
	_, err := n.b.UpdateSettings(context.Background(), acct.owner, broker.SettingsPatch{PPUEnabled: &on})
	require.NoError(t, err)
	_, err = n.b.TopUp(context.Background(), acct.owner, balance, "", "")
	require.NoError(t, err)
	return n, acct
}
