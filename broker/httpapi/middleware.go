// Package httpapi is seatbroker's REST API under /api/v1 (gin): sign-in,
// the License Usage page's data and actions, users, settings and PPU, and
// a Server-Sent Events stream for the page. Handlers are thin: they parse,
// call the broker, and write. Who may see and do what is decided only in
// broker/policy.go; errors take their code and status only from
// broker.ErrorDetail. docs/api.md describes the API for its users; the
// OpenAPI document is served at /api/v1/openapi.json.
package httpapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/seatbroker/seatbroker/broker"
)

// Names the page and clients rely on.
const (
	// CookieName is the page's session cookie (HttpOnly, SameSite=Strict).
	CookieName = "sb_session"
	// CSRFHeader must carry the session's csrf_token on every
	// state-changing request authenticated by the cookie.
	CSRFHeader = "X-CSRF-Token"
)

// Options configure the API.
type Options struct {
	// AllowedOrigins are the origins (scheme://host:port) besides the
	// node's own whose pages may use the cookie session (default none).
	AllowedOrigins []string
	// SecureCookies marks the session cookie Secure (set behind HTTPS).
	SecureCookies bool
	// Stopping is closed when the node starts to stop: the page's event
	// streams then end (the page reconnects, to another node), since the
	// HTTP server's Shutdown waits for every request and a stream never
	// ends by itself (default nil: they end with their request or the
	// broker).
	Stopping <-chan struct{}
	// ClientAddr gives a request's client address, for the limits kept
	// per address (default: the TCP peer's, gin's RemoteIP;
	// clientaddr.Resolver.Of reads a trusted proxy's X-Forwarded-For).
	ClientAddr func(*http.Request) string
}

// api holds what the handlers share.
type api struct {
	b    *broker.Broker
	opts Options
}

// caller is who sent a request, as authenticate found it.
type caller struct {
	p       broker.Principal
	token   string
	cookie  bool      // authenticated by the page's cookie (else a bearer token)
	expires time.Time // the token's expiry, on the Redis clock
}

const callerKey = "seatbroker.caller"

// Register adds the REST API's routes to r.
func Register(r *gin.Engine, b *broker.Broker, opts Options) {
	h := &api{b: b, opts: opts}
	r.Use(apiNotFound)
	v1 := r.Group("/api/v1")
	v1.GET("/openapi.json", serveOpenAPI)
	v1.POST("/auth/signin", h.signIn)

	a := v1.Group("", h.authenticate)
	a.POST("/auth/signout", h.signOut)
	a.GET("/me", h.me)
	a.GET("/overview", h.overview)
	a.GET("/events", h.events)

	a.GET("/sessions", h.listSessions)
	a.POST("/sessions/end", h.endSessions)
	a.GET("/sessions/:id", h.getSession)
	a.GET("/sessions/:id/ledger", h.sessionLedger)
	a.POST("/sessions/:id/pause", h.pause)
	a.POST("/sessions/:id/resume", h.resume)
	a.POST("/codes", h.generateCode)

	a.GET("/users", h.listUsers)
	a.POST("/users", h.addUser)
	a.GET("/users/:id", h.getUser)
	a.PATCH("/users/:id", h.updateUser)
	a.POST("/users/:id/block", h.block(true))
	a.POST("/users/:id/unblock", h.block(false))
	a.PUT("/users/:id/password", h.setPassword)
	a.POST("/users/:id/revoke-tokens", h.revokeTokens)

	a.GET("/settings", h.getSettings)
	a.PATCH("/settings", h.updateSettings)

	a.GET("/ppu", h.ppu)
	a.GET("/ppu/ledger", h.ppuLedger)
	a.GET("/ppu/reconcile", h.ppuReconcile)
	a.POST("/ppu/topup", h.topUp)
}

// csrfToken derives a cookie session's CSRF token from the session token:
// nothing extra is stored, and a page that cannot read the HttpOnly cookie
// cannot compute it.
func csrfToken(session string) string {
	sum := sha256.Sum256([]byte("seatbroker-csrf\x00" + session))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func stateChanging(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

// originOK accepts a request with no Origin (not a browser, or a
// same-origin GET), or one from the node's own host or an allowed origin.
func (h *api) originOK(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	for _, a := range h.opts.AllowedOrigins {
		if strings.EqualFold(strings.TrimSuffix(a, "/"), o) {
			return true
		}
	}
	u, err := url.Parse(o)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && strings.EqualFold(u.Host, r.Host)
}

// authenticate finds the caller: a bearer token (clients and programs) or
// the page's cookie, which must come with the CSRF header on every
// state-changing request and from an allowed origin.
func (h *api) authenticate(c *gin.Context) {
	ctx := c.Request.Context()
	if auth := c.GetHeader("Authorization"); auth != "" {
		tok, ok := strings.CutPrefix(auth, "Bearer ")
		if !ok {
			fail(c, broker.ErrUnauthorized)
			return
		}
		p, exp, err := h.b.AuthenticateUntil(ctx, strings.TrimSpace(tok), broker.TokenClient)
		if err != nil {
			fail(c, err)
			return
		}
		c.Set(callerKey, caller{p: p, token: strings.TrimSpace(tok), expires: exp})
		c.Next()
		return
	}
	ck, err := c.Request.Cookie(CookieName)
	if err != nil || ck.Value == "" {
		fail(c, broker.ErrUnauthorized)
		return
	}
	if !h.originOK(c.Request) {
		fail(c, forbidden("this origin may not use the session cookie"))
		return
	}
	if stateChanging(c.Request.Method) {
		want := csrfToken(ck.Value)
		got := c.GetHeader(CSRFHeader)
		if subtle.ConstantTimeCompare([]byte(want), []byte(got)) != 1 {
			fail(c, forbidden("missing or wrong "+CSRFHeader+" header"))
			return
		}
	}
	p, exp, err := h.b.AuthenticateUntil(ctx, ck.Value, broker.TokenWeb)
	if err != nil {
		fail(c, err)
		return
	}
	c.Set(callerKey, caller{p: p, token: ck.Value, cookie: true, expires: exp})
	c.Next()
}

// forbiddenError is ErrForbidden with a sentence of why.
type forbiddenError struct{ msg string }

func (e *forbiddenError) Error() string { return e.msg }
func (e *forbiddenError) Unwrap() error { return broker.ErrForbidden }

func forbidden(msg string) error { return &forbiddenError{msg: msg} }

// who returns the authenticated caller.
func who(c *gin.Context) caller {
	v, _ := c.Get(callerKey)
	cl, _ := v.(caller)
	return cl
}

// apiCSP is the Content-Security-Policy of every answer but the page's
// (webui sets its own for / and /assets/*): JSON loads nothing and may not
// be framed.
const apiCSP = "default-src 'none'; frame-ancestors 'none'"

// SecurityHeaders is an engine-wide middleware (broker/server installs it
// before any route, so 404s and errors get it too): no content sniffing,
// no framing. A JSON answer can then neither be read as a script or page
// by a browser that guesses its type, nor be framed for clickjacking. The
// page's handler replaces the CSP with its own; the event stream keeps
// these (browsers apply no CSP to it).
func SecurityHeaders(c *gin.Context) {
	h := c.Writer.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", apiCSP)
	c.Next()
}
