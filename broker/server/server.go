// Package server assembles a broker node's HTTP handler: health checks,
// the REST API, the websocket endpoint and the embedded page. cmd/seatbroker
// serves it; tests start it on loopback.
package server

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/seatbroker/seatbroker/broker"
	"github.com/seatbroker/seatbroker/broker/httpapi"
	"github.com/seatbroker/seatbroker/internal/clientaddr"
)

// Options configure the handler.
type Options struct {
	// Log receives one line per request (nil: none).
	Log *slog.Logger
	// AllowedOrigins are the origins (scheme://host:port) besides the
	// node's own that may open websockets and use cookies (default none).
	AllowedOrigins []string
	// SecureCookies marks the page's cookies Secure (set behind HTTPS).
	SecureCookies bool
	// WSWaitingPerAddress is ws.Options.MaxWaitingPerAddress (default 64).
	WSWaitingPerAddress int
	// TrustedProxies are the proxies whose X-Forwarded-For gives the
	// client's address for the limits kept per address (default none:
	// the TCP peer's).
	TrustedProxies clientaddr.Resolver
}

// Node is a node's whole HTTP handler. Close it when the HTTP server's
// Shutdown starts (http.Server.RegisterOnShutdown), and again after it
// returns, to wait: Shutdown does not wait for websockets (they are
// hijacked), Close says goodbye to them; and Shutdown waits for every
// request, while the page's event streams never end by themselves until
// Close ends them.
type Node struct {
	http.Handler
	closers []func()
}

// Close ends the page's event streams and closes the node's websocket
// connections (each after the request it is running), and returns when
// they are closed. It is idempotent and safe for concurrent use.
func (n *Node) Close() {
	for _, c := range n.closers {
		c()
	}
}

// New returns the node's whole HTTP handler.
func New(b *broker.Broker, opts Options) *Node {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	// before any route: gin builds each route's chain when it is added
	r.Use(gin.Recovery(), httpapi.SecurityHeaders)
	if opts.Log != nil {
		r.Use(requestLog(opts.Log))
	}
	healthz := func(c *gin.Context) {
		c.JSON(http.StatusOK, gin.H{"status": "ok"})
	}
	readyz := func(c *gin.Context) {
		if err := b.Ping(c.Request.Context()); err != nil {
			c.JSON(http.StatusServiceUnavailable, gin.H{"status": "unavailable", "reason": "redis unreachable"})
			return
		}
		c.JSON(http.StatusOK, gin.H{"status": "ready"})
	}
	// HEAD as GET: load balancers probe with either
	for _, m := range []string{http.MethodGet, http.MethodHead} {
		r.Handle(m, "/healthz", healthz)
		r.Handle(m, "/readyz", readyz)
	}
	n := &Node{Handler: r}
	mount(n, r, b, opts)
	return n
}

func requestLog(log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		log.Info("http", "method", c.Request.Method, "path", c.FullPath(), "status", c.Writer.Status(),
			"ms", time.Since(start).Milliseconds())
	}
}
