package httpapi

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/seatbroker/seatbroker/broker"
	"github.com/seatbroker/seatbroker/broker/protocol"
)

// signInRequest is POST /auth/signin.
type signInRequest struct {
	Account  string `json:"account"`
	Name     string `json:"name"`
	Password string `json:"password"`
	// Kind is web (the page's cookie, the default) or client (a bearer
	// token in the body).
	Kind string `json:"kind"`
	// TTLSec is how long the token lives (default a day, at most a year).
	TTLSec int64 `json:"ttl_sec"`
}

// webSignIn answers a web sign-in; the token itself is only in the cookie.
type webSignIn struct {
	User      protocol.User     `json:"user"`
	Settings  protocol.Settings `json:"settings"`
	CSRFToken string            `json:"csrf_token"`
	Expires   time.Time         `json:"expires"`
}

// clientSignIn answers a client sign-in.
type clientSignIn struct {
	Token   string        `json:"token"`
	Expires time.Time     `json:"expires"`
	User    protocol.User `json:"user"`
}

func (h *api) signIn(c *gin.Context) {
	var req signInRequest
	if err := bind(c, &req, false); err != nil {
		fail(c, err)
		return
	}
	if req.Kind == "" {
		req.Kind = broker.TokenWeb
	}
	if req.Kind == broker.TokenWeb && !h.originOK(c.Request) {
		fail(c, forbidden("this origin may not sign in to the page"))
		return
	}
	if req.TTLSec < 0 || req.TTLSec > int64(broker.MaxTokenTTL/time.Second) {
		fail(c, badRequest("ttl_sec", "must be a minute to a year"))
		return
	}
	ctx := c.Request.Context()
	// the peer's address, or what a trusted proxy says (Options.ClientAddr):
	// a forwarded-for header is the caller's to forge, and the limit per
	// source must not be dodged by one
	source := c.RemoteIP()
	if h.opts.ClientAddr != nil {
		source = h.opts.ClientAddr(c.Request)
	}
	tok, err := h.b.SignIn(ctx, broker.Credentials{Account: req.Account, Name: req.Name, Password: req.Password},
		source, req.Kind, time.Duration(req.TTLSec)*time.Second)
	if err != nil {
		fail(c, err)
		return
	}
	p := tok.Principal
	u, err := h.b.User(ctx, p, p.UserID)
	if err != nil {
		fail(c, err)
		return
	}
	if req.Kind == broker.TokenClient {
		c.JSON(http.StatusOK, clientSignIn{Token: tok.Token, Expires: tok.Expires, User: u})
		return
	}
	set, err := h.b.Settings(ctx, p.Account)
	if err != nil {
		fail(c, err)
		return
	}
	h.setCookie(c, tok.Token, int(time.Until(tok.Expires)/time.Second))
	c.JSON(http.StatusOK, webSignIn{User: u, Settings: set, CSRFToken: csrfToken(tok.Token), Expires: tok.Expires})
}

// setCookie sets (maxAge > 0) or clears (maxAge < 0) the session cookie.
func (h *api) setCookie(c *gin.Context, value string, maxAge int) {
	http.SetCookie(c.Writer, &http.Cookie{
		Name: CookieName, Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: h.opts.SecureCookies, SameSite: http.SameSiteStrictMode,
	})
}

func (h *api) signOut(c *gin.Context) {
	if err := noBody(c); err != nil {
		fail(c, err)
		return
	}
	cl := who(c)
	if err := h.b.Revoke(c.Request.Context(), cl.p, cl.token); err != nil {
		fail(c, err)
		return
	}
	if cl.cookie {
		h.setCookie(c, "", -1)
	}
	c.Status(http.StatusNoContent)
}

// permissions are the caller's effective permissions.
type permissions struct {
	View    string `json:"view"`
	Control string `json:"control"`
	IsAdmin bool   `json:"is_admin"`
}

// meResponse is GET /me.
type meResponse struct {
	User        protocol.User     `json:"user"`
	Settings    protocol.Settings `json:"settings"`
	Permissions permissions       `json:"permissions"`
	// CSRFToken is set for cookie sessions.
	CSRFToken string `json:"csrf_token,omitempty"`
}

func (h *api) me(c *gin.Context) {
	cl := who(c)
	ctx := c.Request.Context()
	u, err := h.b.User(ctx, cl.p, cl.p.UserID)
	if err != nil {
		fail(c, err)
		return
	}
	set, err := h.b.Settings(ctx, cl.p.Account)
	if err != nil {
		fail(c, err)
		return
	}
	out := meResponse{User: u, Settings: set,
		Permissions: permissions{View: cl.p.View, Control: cl.p.Control, IsAdmin: cl.p.IsAdmin()}}
	if cl.cookie {
		out.CSRFToken = csrfToken(cl.token)
	}
	c.JSON(http.StatusOK, out)
}

func (h *api) overview(c *gin.Context) {
	o, err := h.b.Overview(c.Request.Context(), who(c).p)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, o)
}
