package httpapi

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/seatbroker/seatbroker/broker"
	"github.com/seatbroker/seatbroker/broker/protocol"
)

// ppuStatus is GET /ppu.
type ppuStatus struct {
	Enabled bool  `json:"enabled"`
	Balance int64 `json:"balance"`
}

// ppu shows the balance to owner and admins.
func (h *api) ppu(c *gin.Context) {
	p := who(c).p
	if !p.IsAdmin() {
		fail(c, broker.ErrForbidden)
		return
	}
	o, err := h.b.Overview(c.Request.Context(), p)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, ppuStatus{Enabled: o.PPUEnabled, Balance: o.PPUBalance})
}

func (h *api) ppuLedger(c *gin.Context) {
	offset, err := queryInt(c, "offset")
	if err != nil {
		fail(c, err)
		return
	}
	limit, err := queryInt(c, "limit")
	if err != nil {
		fail(c, err)
		return
	}
	es, total, err := h.b.Ledger(c.Request.Context(), who(c).p, int64(offset), int64(limit))
	if err != nil {
		fail(c, err)
		return
	}
	if es == nil {
		es = []protocol.LedgerEntry{}
	}
	c.JSON(http.StatusOK, ledgerList{Entries: es, Total: total})
}

// topUpRequest is POST /ppu/topup. Key makes a retried top-up count once.
type topUpRequest struct {
	Minutes int64  `json:"minutes"`
	Key     string `json:"key"`
	Note    string `json:"note"`
}

// topUpResponse is the balance after the top-up.
type topUpResponse struct {
	Balance int64 `json:"balance"`
}

func (h *api) topUp(c *gin.Context) {
	var req topUpRequest
	if err := bind(c, &req, false); err != nil {
		fail(c, err)
		return
	}
	bal, err := h.b.TopUp(c.Request.Context(), who(c).p, req.Minutes, req.Key, req.Note)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, topUpResponse{Balance: bal})
}

// ppuReconcile is GET /ppu/reconcile: the ledger added up beside the
// balance (README, "Minutes are money").
func (h *api) ppuReconcile(c *gin.Context) {
	r, err := h.b.Reconcile(c.Request.Context(), who(c).p)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, r)
}
