package rdb

// Status is the first element of every account script's reply; the values
// mirror the ST_ constants of lua/lib.lua.
type Status int64

// The statuses a script can answer.
const (
	StatusOK           Status = 0
	StatusNotFound     Status = 1
	StatusForbidden    Status = 2
	StatusUserBlocked  Status = 3
	StatusUserLimit    Status = 4
	StatusAccountLimit Status = 5
	StatusPPUExhausted Status = 6
	StatusBadState     Status = 7
	StatusStale        Status = 8
	StatusExists       Status = 9
	StatusInvalid      Status = 10
)

func (s Status) String() string {
	switch s {
	case StatusOK:
		return "ok"
	case StatusNotFound:
		return "not_found"
	case StatusForbidden:
		return "forbidden"
	case StatusUserBlocked:
		return "user_blocked"
	case StatusUserLimit:
		return "user_limit"
	case StatusAccountLimit:
		return "account_limit"
	case StatusPPUExhausted:
		return "ppu_exhausted"
	case StatusBadState:
		return "bad_state"
	case StatusStale:
		return "stale"
	case StatusExists:
		return "exists"
	case StatusInvalid:
		return "invalid"
	}
	return "unknown"
}
