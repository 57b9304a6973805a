package server

import (
	"sync"

	"github.com/gin-gonic/gin"

	"github.com/seatbroker/seatbroker/broker"
	"github.com/seatbroker/seatbroker/broker/httpapi"
	"github.com/seatbroker/seatbroker/broker/ws"
	"github.com/seatbroker/seatbroker/webui"
)

// mount adds the API, websocket and page routes. Each layer registers its
// own routes; this is the one place that lists them.
// A layer with connections to say goodbye to adds its Close to n.closers.
func mount(n *Node, r *gin.Engine, b *broker.Broker, opts Options) {
	stopping := make(chan struct{})
	var once sync.Once
	n.closers = append(n.closers, func() { once.Do(func() { close(stopping) }) })
	httpapi.Register(r, b, httpapi.Options{AllowedOrigins: opts.AllowedOrigins, SecureCookies: opts.SecureCookies,
		Stopping: stopping, ClientAddr: opts.TrustedProxies.Of})
	wss := ws.Register(r, b, ws.Options{Log: opts.Log, AllowedOrigins: opts.AllowedOrigins,
		MaxWaitingPerAddress: opts.WSWaitingPerAddress, ClientAddr: opts.TrustedProxies.Of})
	n.closers = append(n.closers, wss.Close)
	webui.Register(r)
}
