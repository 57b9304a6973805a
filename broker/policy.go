package broker

import "github.com/seatbroker/seatbroker/broker/protocol"

// Principal is a signed-in user acting on its account, with its effective
// permissions. Every check of who may see and do what goes through the
// functions of this file, for the REST API and the websocket layer alike.
type Principal struct {
	Account string
	UserID  string
	Name    string
	Role    string
	View    string
	Control string
}

// IsAdmin says whether the principal is the owner or an admin.
func (p Principal) IsAdmin() bool {
	return p.Role == protocol.RoleOwner || p.Role == protocol.RoleAdmin
}

func scopeRank(s string) int {
	switch s {
	case protocol.ScopeOwn:
		return 1
	case protocol.ScopeDomain:
		return 2
	}
	return 0
}

func validScope(s string) bool {
	return s == protocol.ScopeNone || s == protocol.ScopeOwn || s == protocol.ScopeDomain
}

// CheckScopes refuses a pair where control is wider than view.
func CheckScopes(view, control string) error {
	if !validScope(view) {
		return invalid("view", "must be none, own or domain")
	}
	if !validScope(control) {
		return invalid("control", "must be none, own or domain")
	}
	if scopeRank(control) > scopeRank(view) {
		return invalid("control", "control cannot be wider than view")
	}
	return nil
}

// Effective returns a user's view and control: owner and admins always
// domain; others their override where set, else the account default.
func Effective(role, userView, userControl, acctView, acctControl string) (view, control string) {
	if role == protocol.RoleOwner || role == protocol.RoleAdmin {
		return protocol.ScopeDomain, protocol.ScopeDomain
	}
	view, control = acctView, acctControl
	if userView != "" {
		view = userView
	}
	if userControl != "" {
		control = userControl
	}
	// A pair that disagrees (an account default narrowed under a user
	// override) never grants more control than view.
	if scopeRank(control) > scopeRank(view) {
		control = view
	}
	return view, control
}

// CanView says whether p may see a session of owner in state.
func (p Principal) CanView(owner, state string) bool {
	if owner == p.UserID {
		return scopeRank(p.View) >= 1
	}
	if state == protocol.StatePaused {
		return false // another user's paused session is invisible
	}
	return scopeRank(p.View) >= 2
}

// CanControl says whether p may end a session of owner in state.
func (p Principal) CanControl(owner, state string) bool {
	if !p.CanView(owner, state) {
		return false
	}
	if owner == p.UserID {
		return scopeRank(p.Control) >= 1
	}
	return scopeRank(p.Control) >= 2
}
