package server

import (
	"github.com/gin-gonic/gin"

	"github.com/seatbroker/seatbroker/broker"
	"github.com/seatbroker/seatbroker/broker/httpapi"
	"github.com/seatbroker/seatbroker/webui"
)

// mount adds the API, websocket and page routes. Each layer registers its
// own routes; this is the one place that lists them.
func mount(r *gin.Engine, b *broker.Broker, opts Options) {
	httpapi.Register(r, b, httpapi.Options{AllowedOrigins: opts.AllowedOrigins, SecureCookies: opts.SecureCookies})
	webui.Register(r)
}
