package httpapi

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/seatbroker/seatbroker/broker"
	"github.com/seatbroker/seatbroker/broker/protocol"
)

// sessionList is GET /sessions.
type sessionList struct {
	Sessions []protocol.Session `json:"sessions"`
	Total    int                `json:"total"`
}

// queryInt reads an optional non-negative integer query parameter.
func queryInt(c *gin.Context, name string) (int, error) {
	s := c.Query(name)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, badRequest(name, "must be a whole number, 0 or more")
	}
	return n, nil
}

func (h *api) listSessions(c *gin.Context) {
	f := broker.SessionFilter{UserID: c.Query("user_id")}
	if st := c.Query("state"); st != "" {
		f.States = strings.Split(st, ",")
	}
	var err error
	if f.Offset, err = queryInt(c, "offset"); err != nil {
		fail(c, err)
		return
	}
	if f.Limit, err = queryInt(c, "limit"); err != nil {
		fail(c, err)
		return
	}
	ss, total, err := h.b.Sessions(c.Request.Context(), who(c).p, f)
	if err != nil {
		fail(c, err)
		return
	}
	if ss == nil {
		ss = []protocol.Session{}
	}
	c.JSON(http.StatusOK, sessionList{Sessions: ss, Total: total})
}

func (h *api) getSession(c *gin.Context) {
	s, err := h.b.Session(c.Request.Context(), who(c).p, c.Param("id"))
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, s)
}

// ledgerList is a page of ledger entries.
type ledgerList struct {
	Entries []protocol.LedgerEntry `json:"entries"`
	Total   int64                  `json:"total"`
}

func (h *api) sessionLedger(c *gin.Context) {
	es, err := h.b.SessionLedger(c.Request.Context(), who(c).p, c.Param("id"))
	if err != nil {
		fail(c, err)
		return
	}
	if es == nil {
		es = []protocol.LedgerEntry{}
	}
	c.JSON(http.StatusOK, ledgerList{Entries: es, Total: int64(len(es))})
}

// endRequest is POST /sessions/end: End Selected Sessions.
type endRequest struct {
	SessionIDs []string `json:"session_ids"`
}

// endResponse has one result per requested session, in order.
type endResponse struct {
	Results []protocol.EndResult `json:"results"`
}

func (h *api) endSessions(c *gin.Context) {
	var req endRequest
	if err := bind(c, &req, false); err != nil {
		fail(c, err)
		return
	}
	res, err := h.b.EndSessions(c.Request.Context(), who(c).p, req.SessionIDs)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, endResponse{Results: res})
}

// ownOnly turns the store's "not yours" (not found) into forbidden when the
// caller may see the session: only its own user may pause or resume it,
// and what the caller may not see stays not found.
func (h *api) ownOnly(c *gin.Context, err error) error {
	if !errors.Is(err, broker.ErrNotFound) {
		return err
	}
	if _, verr := h.b.Session(c.Request.Context(), who(c).p, c.Param("id")); verr == nil {
		return forbidden("only the session's own user may pause or resume it")
	}
	return err
}

func (h *api) pause(c *gin.Context) {
	if err := noBody(c); err != nil {
		fail(c, err)
		return
	}
	p := who(c).p
	// no fencing token: the user acts on its own session by its own
	// authority, as a signed-in user, not as the holder of a lease
	// (docs/design.md, Fencing)
	s, err := h.b.Pause(c.Request.Context(), p.Account, p.UserID, c.Param("id"), "")
	if err != nil {
		fail(c, h.ownOnly(c, err))
		return
	}
	s.CanControl = p.CanControl(s.UserID, s.State)
	c.JSON(http.StatusOK, s)
}

func (h *api) resume(c *gin.Context) {
	if err := noBody(c); err != nil {
		fail(c, err)
		return
	}
	p := who(c).p
	g, err := h.b.Resume(c.Request.Context(), p.Account, p.UserID, c.Param("id"))
	if err != nil {
		fail(c, h.ownOnly(c, err))
		return
	}
	g.Session.CanControl = p.CanControl(g.Session.UserID, g.Session.State)
	c.JSON(http.StatusOK, g)
}

// codeRequest is POST /codes: generate a session code on a device.
type codeRequest struct {
	DeviceID   string `json:"device_id"`
	DeviceName string `json:"device_name"`
}

func (h *api) generateCode(c *gin.Context) {
	var req codeRequest
	if err := bind(c, &req, false); err != nil {
		fail(c, err)
		return
	}
	p := who(c).p
	g, err := h.b.Open(c.Request.Context(), broker.OpenRequest{Account: p.Account, UserID: p.UserID,
		DeviceID: req.DeviceID, DeviceName: req.DeviceName, WithCode: true})
	if err != nil {
		fail(c, err)
		return
	}
	g.Session.CanControl = p.CanControl(g.Session.UserID, g.Session.State)
	c.JSON(http.StatusOK, g)
}
