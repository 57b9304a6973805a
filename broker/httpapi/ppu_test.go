package httpapi_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/seatbroker/seatbroker/broker/server"
)

func TestReconcileAddsUpTheLedgerBesideTheBalance(t *testing.T) {
	t.Parallel()
	e := newEnv(t, server.Options{})
	a := e.account(0, true)
	e.mustDo(http.MethodPost, "/api/v1/ppu/topup", a.token, map[string]any{"minutes": 30, "key": "inv-1"}, nil)
	a.open(a.owner.ID, "d1") // on PPU: its first minute is billed
	var r struct {
		Balance   int64 `json:"balance"`
		LedgerSum int64 `json:"ledger_sum"`
		Minutes   int64 `json:"minutes_billed"`
		TopUps    int64 `json:"topped_up"`
		OK        bool  `json:"ok"`
	}
	e.mustDo(http.MethodGet, "/api/v1/ppu/reconcile", a.token, nil, &r)
	assert.True(t, r.OK)
	assert.Equal(t, int64(29), r.Balance)
	assert.Equal(t, r.Balance, r.LedgerSum)
	assert.Equal(t, int64(1), r.Minutes)
	assert.Equal(t, int64(30), r.TopUps)
}
