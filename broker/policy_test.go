package broker_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/seatbroker/seatbroker/broker"
	"github.com/seatbroker/seatbroker/broker/protocol"
)

func TestOwnerAndAdminsAlwaysHaveDomainScopes(t *testing.T) {
	for _, role := range []string{protocol.RoleOwner, protocol.RoleAdmin} {
		v, c := broker.Effective(role, protocol.ScopeNone, protocol.ScopeNone, protocol.ScopeNone, protocol.ScopeNone)
		assert.Equal(t, protocol.ScopeDomain, v, role)
		assert.Equal(t, protocol.ScopeDomain, c, role)
	}
}

func TestUserOverridesWinOverAccountDefaults(t *testing.T) {
	v, c := broker.Effective(protocol.RoleMember, protocol.ScopeOwn, "", protocol.ScopeDomain, protocol.ScopeOwn)
	assert.Equal(t, protocol.ScopeOwn, v)
	assert.Equal(t, protocol.ScopeOwn, c)
	v, c = broker.Effective(protocol.RoleMember, "", "", protocol.ScopeDomain, protocol.ScopeOwn)
	assert.Equal(t, protocol.ScopeDomain, v)
	assert.Equal(t, protocol.ScopeOwn, c)
}

func TestControlNeverWiderThanView(t *testing.T) {
	assert.ErrorIs(t, broker.CheckScopes(protocol.ScopeOwn, protocol.ScopeDomain), broker.ErrInvalid)
	assert.ErrorIs(t, broker.CheckScopes(protocol.ScopeNone, protocol.ScopeOwn), broker.ErrInvalid)
	assert.NoError(t, broker.CheckScopes(protocol.ScopeDomain, protocol.ScopeOwn))
	// a user's view override narrower than the account's control default
	_, c := broker.Effective(protocol.RoleMember, protocol.ScopeOwn, "", protocol.ScopeDomain, protocol.ScopeDomain)
	assert.Equal(t, protocol.ScopeOwn, c)
}

func TestViewAndControlOfSessions(t *testing.T) {
	me := "u1"
	cases := []struct {
		view, control, owner, state string
		canView, canControl         bool
	}{
		{protocol.ScopeNone, protocol.ScopeNone, me, protocol.StateActive, false, false},
		{protocol.ScopeOwn, protocol.ScopeNone, me, protocol.StateActive, true, false},
		{protocol.ScopeOwn, protocol.ScopeOwn, me, protocol.StateActive, true, true},
		{protocol.ScopeOwn, protocol.ScopeOwn, "u2", protocol.StateActive, false, false},
		{protocol.ScopeDomain, protocol.ScopeOwn, "u2", protocol.StateActive, true, false},
		{protocol.ScopeDomain, protocol.ScopeDomain, "u2", protocol.StateActive, true, true},
		{protocol.ScopeDomain, protocol.ScopeDomain, "u2", protocol.StatePaused, false, false},
		{protocol.ScopeOwn, protocol.ScopeOwn, me, protocol.StatePaused, true, true},
	}
	for _, tc := range cases {
		p := broker.Principal{UserID: me, Role: protocol.RoleMember, View: tc.view, Control: tc.control}
		assert.Equal(t, tc.canView, p.CanView(tc.owner, tc.state), "%+v view", tc)
		assert.Equal(t, tc.canControl, p.CanControl(tc.owner, tc.state), "%+v control", tc)
	}
}
