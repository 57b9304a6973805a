package broker

import (
	"errors"
	"sort"
	"time"

	"github.com/seatbroker/seatbroker/broker/internal/rdb"
	"github.com/seatbroker/seatbroker/broker/protocol"
)

func msTime(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

func msPtr(ms int64) *time.Time {
	if ms == 0 {
		return nil
	}
	t := msTime(ms)
	return &t
}

// view turns a stored session into what a viewer sees, with durations on
// now, the account's Redis clock (Broker.Now). CanControl is left for the
// caller.
func view(r rdb.SessionRec, now time.Time) protocol.Session {
	nowMS := now.UnixMilli()
	s := protocol.Session{
		ID: r.ID, UserID: r.User, UserName: r.UserName, DeviceID: r.Device, DeviceName: r.DeviceName,
		State: r.State, Created: msTime(r.Created), Started: msPtr(r.Activated),
		Reason: r.Reason, EndedBy: r.By, EndedAt: msPtr(r.EndedAt()), PPUMinutes: r.Billed,
	}
	switch r.State {
	case protocol.StateStandby, protocol.StateActive, protocol.StateTerminating:
		s.Kind = r.Kind
	}
	if r.State == protocol.StateStandby {
		s.Code = r.Code // a code is worth showing only while it can be used
	}
	if r.Activated > 0 {
		end := nowMS
		if e := r.EndedAt(); e > 0 {
			end = e
		}
		if end > r.Activated {
			s.DurationSec = (end - r.Activated) / 1000
		}
	}
	if r.State == protocol.StateTerminating {
		s.Deadline = msPtr(r.Deadline)
		left := (r.Deadline - nowMS + 999) / 1000
		if left < 0 {
			left = 0
		}
		s.SecondsLeft = left
	}
	return s
}

func userView(u rdb.UserRec, acctView, acctControl string, held int) protocol.User {
	v, c := Effective(u.Role, u.View, u.Control, acctView, acctControl)
	return protocol.User{
		ID: u.ID, Name: u.Name, Role: u.Role, Status: u.Status, MaxSeats: u.MaxSeats,
		View: u.View, Control: u.Control, EffectiveView: v, EffectiveControl: c, SeatsHeld: held,
	}
}

func sortUsers(us []protocol.User) {
	sort.Slice(us, func(i, j int) bool {
		if us[i].Name != us[j].Name {
			return us[i].Name < us[j].Name
		}
		return us[i].ID < us[j].ID
	})
}

func asStatus(err error, target **rdb.StatusError) bool { return errors.As(err, target) }
