package server

import (
	"github.com/gin-gonic/gin"

	"github.com/seatbroker/seatbroker/broker"
	"github.com/seatbroker/seatbroker/webui"
)

// mount adds the API, websocket and page routes. Each layer registers its
// own routes; this is the one place that lists them.
func mount(r *gin.Engine, b *broker.Broker, opts Options) {
	_ = r
	_ = b
	_ = opts
	webui.Register(r)
}
