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
}

// New returns the node's whole HTTP handler.
func New(b *broker.Broker, opts Options) http.Handler {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(gin.Recovery())
	if opts.Log != nil {
		r.Use(requestLog(opts.Log))
	}
	r.GET("/healthz", func(c *gin.Context) {
		c.JSON(http.StatusOK, gin.H{"status": "ok"})
	})
	r.GET("/readyz", func(c *gin.Context) {
		if err := b.Ping(c.Request.Context()); err != nil {
			c.JSON(http.StatusServiceUnavailable, gin.H{"status": "unavailable", "reason": "redis unreachable"})
			return
		}
		c.JSON(http.StatusOK, gin.H{"status": "ready"})
	})
	mount(r, b, opts)
	return r
}

func requestLog(log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		log.Info("http", "method", c.Request.Method, "path", c.FullPath(), "status", c.Writer.Status(),
			"ms", time.Since(start).Milliseconds())
	}
}
