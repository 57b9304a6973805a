package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/seatbroker/seatbroker/broker"
	"github.com/seatbroker/seatbroker/broker/protocol"
)

// userList is GET /users.
type userList struct {
	Users []protocol.User `json:"users"`
}

func (h *api) listUsers(c *gin.Context) {
	us, err := h.b.Users(c.Request.Context(), who(c).p)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, userList{Users: us})
}

// addUserRequest is POST /users.
type addUserRequest struct {
	Name     string `json:"name"`
	Role     string `json:"role"`
	Password string `json:"password"`
	MaxSeats *int   `json:"max_seats"`
	View     string `json:"view"`
	Control  string `json:"control"`
}

func (h *api) addUser(c *gin.Context) {
	var req addUserRequest
	if err := bind(c, &req, false); err != nil {
		fail(c, err)
		return
	}
	p := who(c).p
	if !p.IsAdmin() {
		fail(c, broker.ErrForbidden)
		return
	}
	// checked before the user exists, so a bad password adds no one
	if req.Password != "" && (len(req.Password) < broker.MinPassword || len(req.Password) > broker.MaxPassword) {
		fail(c, badRequest("password", "must be 8 to 72 bytes"))
		return
	}
	ctx := c.Request.Context()
	u, err := h.b.AddUser(ctx, p, broker.UserSpec{Name: req.Name, Role: req.Role, MaxSeats: req.MaxSeats,
		View: req.View, Control: req.Control})
	if err != nil {
		fail(c, err)
		return
	}
	if req.Password != "" {
		if err := h.b.SetPassword(ctx, p, u.ID, req.Password, ""); err != nil {
			fail(c, err)
			return
		}
	}
	c.JSON(http.StatusCreated, u)
}

func (h *api) getUser(c *gin.Context) {
	u, err := h.b.User(c.Request.Context(), who(c).p, c.Param("id"))
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, u)
}

// nullableInt tells an absent field (Set false) from null (Set, Null)
// and a number.
type nullableInt struct {
	Set  bool
	Null bool
	V    int
}

// UnmarshalJSON reads null or a whole number.
func (n *nullableInt) UnmarshalJSON(b []byte) error {
	n.Set = true
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		n.Null = true
		return nil
	}
	return json.Unmarshal(b, &n.V)
}

// updateUserRequest is PATCH /users/{id}: absent fields stay; max_seats
// null removes the limit; view or control "" follows the account.
type updateUserRequest struct {
	Name     *string     `json:"name"`
	Role     *string     `json:"role"`
	MaxSeats nullableInt `json:"max_seats"`
	View     *string     `json:"view"`
	Control  *string     `json:"control"`
}

func (h *api) updateUser(c *gin.Context) {
	var req updateUserRequest
	if err := bind(c, &req, false); err != nil {
		fail(c, err)
		return
	}
	patch := broker.UserPatch{Name: req.Name, Role: req.Role, View: req.View, Control: req.Control,
		ClearMaxSeats: req.MaxSeats.Set && req.MaxSeats.Null}
	if req.MaxSeats.Set && !req.MaxSeats.Null {
		patch.MaxSeats = &req.MaxSeats.V
	}
	u, err := h.b.UpdateUser(c.Request.Context(), who(c).p, c.Param("id"), patch)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, u)
}

func (h *api) block(block bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		if err := noBody(c); err != nil {
			fail(c, err)
			return
		}
		u, err := h.b.BlockUser(c.Request.Context(), who(c).p, c.Param("id"), block)
		if err != nil {
			fail(c, err)
			return
		}
		c.JSON(http.StatusOK, u)
	}
}

// passwordRequest is PUT /users/{id}/password.
type passwordRequest struct {
	Password string `json:"password"`
}

// setPassword sets a user's password; every other token of the user
// stops working (the caller's own token stays when it sets its own).
func (h *api) setPassword(c *gin.Context) {
	var req passwordRequest
	if err := bind(c, &req, false); err != nil {
		fail(c, err)
		return
	}
	cl := who(c)
	if err := h.b.SetPassword(c.Request.Context(), cl.p, c.Param("id"), req.Password, cl.token); err != nil {
		fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// revokeResponse says how many tokens were revoked.
type revokeResponse struct {
	Revoked int `json:"revoked"`
}

// revokeTokens signs a user out everywhere: every token of the user stops
// working at once (the user itself, or owner and admins for anyone but the
// owner).
func (h *api) revokeTokens(c *gin.Context) {
	if err := noBody(c); err != nil {
		fail(c, err)
		return
	}
	p := who(c).p
	uid := c.Param("id")
	// what the caller may not look at answers not found
	if _, err := h.b.User(c.Request.Context(), p, uid); err != nil {
		fail(c, err)
		return
	}
	n, err := h.b.RevokeUserTokens(c.Request.Context(), p, uid)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, revokeResponse{Revoked: n})
}
