package httpapi

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/seatbroker/seatbroker/broker"
)

// getSettings returns the account's settings to any signed-in user of it:
// the page shows members the counting mode and durations too.
func (h *api) getSettings(c *gin.Context) {
	s, err := h.b.Settings(c.Request.Context(), who(c).p.Account)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, s)
}

func (h *api) updateSettings(c *gin.Context) {
	var patch broker.SettingsPatch
	if err := bind(c, &patch, false); err != nil {
		fail(c, err)
		return
	}
	s, err := h.b.UpdateSettings(c.Request.Context(), who(c).p, patch)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, s)
}
