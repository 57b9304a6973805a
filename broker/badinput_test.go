package broker_test

import (
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seatbroker/seatbroker/broker"
	"github.com/seatbroker/seatbroker/broker/protocol"
)

func TestBadInputGetsCodeAndChangesNothing(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c redis.UniversalClient) {
		f := newFixture(t, c, setup{seats: 2})
		u := f.user("ann", nil)
		g := f.mustOpen(u, "d1")
		// another account on the same Redis and node
		other := accountOn(t, f.b, setup{seats: 2})
		ou := other.user("zed", nil)
		og := other.mustOpen(ou, "d1")
		before := f.snapshot()

		cases := []struct {
			name string
			err  error
			call func() error
		}{
			{"empty device id", broker.ErrInvalid, func() error { _, err := f.open(u, ""); return err }},
			{"huge device id", broker.ErrInvalid, func() error { _, err := f.open(u, strings.Repeat("x", 10_000)); return err }},
			{"control chars in device id", broker.ErrInvalid, func() error { _, err := f.open(u, "d\x00"); return err }},
			{"unknown user", broker.ErrNotFound, func() error {
				_, err := f.b.Open(f.ctx, broker.OpenRequest{Account: f.acct, UserID: uuid.NewString(), DeviceID: "d"})
				return err
			}},
			{"unknown account", broker.ErrNotFound, func() error {
				_, err := f.b.Open(f.ctx, broker.OpenRequest{Account: "nope", UserID: u.UserID, DeviceID: "d"})
				return err
			}},
			{"malformed account", broker.ErrNotFound, func() error {
				_, err := f.b.Open(f.ctx, broker.OpenRequest{Account: "{x}", UserID: u.UserID, DeviceID: "d"})
				return err
			}},
			{"another account's user", broker.ErrNotFound, func() error {
				_, err := f.b.Open(f.ctx, broker.OpenRequest{Account: f.acct, UserID: ou.UserID, DeviceID: "d"})
				return err
			}},
			{"pause unknown session", broker.ErrNotFound, func() error { _, err := f.b.Pause(f.ctx, f.acct, u.UserID, uuid.NewString(), ""); return err }},
			{"pause malformed id", broker.ErrNotFound, func() error { _, err := f.b.Pause(f.ctx, f.acct, u.UserID, "../x", ""); return err }},
			{"pause another account's session", broker.ErrNotFound, func() error { _, err := f.b.Pause(f.ctx, f.acct, u.UserID, og.Session.ID, ""); return err }},
			{"get another account's session", broker.ErrNotFound, func() error { _, err := f.b.Session(f.ctx, f.owner, og.Session.ID); return err }},
			{"close another account's session", broker.ErrNotFound, func() error {
				_, err := f.b.CloseSession(f.ctx, f.acct, u.UserID, "ann", og.Session.ID, "")
				return err
			}},
			{"resume unknown", broker.ErrNotFound, func() error { _, err := f.b.Resume(f.ctx, f.acct, u.UserID, uuid.NewString()); return err }},
			{"end nothing", broker.ErrInvalid, func() error { _, err := f.b.EndSessions(f.ctx, f.owner, nil); return err }},
			{"end too many", broker.ErrInvalid, func() error {
				ids := make([]string, broker.MaxEnd+1)
				for i := range ids {
					ids[i] = uuid.NewString()
				}
				_, err := f.b.EndSessions(f.ctx, f.owner, ids)
				return err
			}},
			{"negative seats", broker.ErrInvalid, func() error {
				n := int64(-3)
				_, err := f.b.UpdateSettings(f.ctx, f.owner, broker.SettingsPatch{Seats: &n})
				return err
			}},
			{"control wider than view", broker.ErrInvalid, func() error {
				v, c := protocol.ScopeOwn, protocol.ScopeDomain
				_, err := f.b.UpdateSettings(f.ctx, f.owner, broker.SettingsPatch{View: &v, Control: &c})
				return err
			}},
			{"unknown mode", broker.ErrInvalid, func() error {
				m := "seat"
				_, err := f.b.UpdateSettings(f.ctx, f.owner, broker.SettingsPatch{Mode: &m})
				return err
			}},
			{"member changes settings", broker.ErrForbidden, func() error {
				n := int64(9)
				_, err := f.b.UpdateSettings(f.ctx, u, broker.SettingsPatch{Seats: &n})
				return err
			}},
			{"duplicate user name", broker.ErrInvalid, func() error {
				_, err := f.b.AddUser(f.ctx, f.owner, broker.UserSpec{Name: "ANN"})
				return err
			}},
			{"negative max seats", broker.ErrInvalid, func() error {
				_, err := f.b.AddUser(f.ctx, f.owner, broker.UserSpec{Name: "neg", MaxSeats: intp(-1)})
				return err
			}},
			{"block the owner", broker.ErrInvalid, func() error { _, err := f.b.BlockUser(f.ctx, f.owner, f.owner.UserID, true); return err }},
			{"stale heartbeat", broker.ErrForbidden, func() error {
				res, err := f.b.Renew(f.ctx, f.acct, u.UserID, []broker.SessionRef{{ID: g.Session.ID, Fence: "1"}})
				require.NoError(t, err)
				return res[0].Err
			}},
		}
		for _, tc := range cases {
			err := tc.call()
			assert.ErrorIs(t, err, tc.err, tc.name)
			d, status := broker.ErrorDetail(err)
			assert.NotEqual(t, protocol.CodeInternal, d.Code, tc.name)
			assert.Less(t, status, 500, tc.name)
			assert.NotEmpty(t, d.Message, tc.name)
		}
		assert.Equal(t, before, f.snapshot(), "refused requests change nothing")
		assert.Equal(t, protocol.StateActive, other.state(og.Session.ID).State)
	})
}

func TestNobodySeesAnotherAccountsSessions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c redis.UniversalClient) {
		f := newFixture(t, c, setup{seats: 2})
		other := accountOn(t, f.b, setup{seats: 2})
		og := other.mustOpen(other.user("zed", nil), "d1")
		list, total, err := f.b.Sessions(f.ctx, f.owner, broker.SessionFilter{})
		require.NoError(t, err)
		assert.Empty(t, list)
		assert.Zero(t, total)
		res, err := f.b.EndSessions(f.ctx, f.owner, []string{og.Session.ID})
		require.NoError(t, err)
		assert.Equal(t, protocol.CodeNotFound, res[0].Error.Code)
		assert.Equal(t, protocol.StateActive, other.state(og.Session.ID).State)
	})
}
