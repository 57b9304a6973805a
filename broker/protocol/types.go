package protocol

import "time"

// Session states (SPEC.md, "Session states").
const (
	StateStandby     = "standby"
	StateActive      = "active"
	StatePaused      = "paused"
	StateTerminating = "terminating"
	StateEnded       = "ended"
)

// Seat kinds of a seat-holding session.
const (
	KindPrepaid = "prepaid"
	KindPPU     = "ppu"
)

// Reasons a session ended (or is ending).
const (
	ReasonClosed       = "closed"
	ReasonTerminated   = "terminated"
	ReasonExpired      = "expired"
	ReasonLeaseLost    = "lease_lost"
	ReasonPPUExhausted = "ppu_exhausted"
	ReasonUserBlocked  = "user_blocked"
	// ReasonGone is the reason of an ended message for a session whose
	// record no longer exists (its retention passed while the client was
	// away): the message carries no session. Never a stored session's reason.
	ReasonGone = "gone"
)

// Session is one session as a viewer sees it.
type Session struct {
	ID         string `json:"id"`
	UserID     string `json:"user_id"`
	UserName   string `json:"user_name"`
	DeviceID   string `json:"device_id"`
	DeviceName string `json:"device_name,omitempty"`
	State      string `json:"state"`
	// Kind is prepaid or ppu while the session holds a seat.
	Kind    string     `json:"kind,omitempty"`
	Code    string     `json:"code,omitempty"`
	Created time.Time  `json:"created"`
	Started *time.Time `json:"started,omitempty"`
	// DurationSec is how long it has run since it started (to its end).
	DurationSec int64 `json:"duration_sec"`
	// Deadline and SecondsLeft are set while terminating.
	Deadline    *time.Time `json:"deadline,omitempty"`
	SecondsLeft int64      `json:"seconds_left,omitempty"`
	// Reason: why it is ending or ended; EndedBy: who ended it.
	Reason  string     `json:"reason,omitempty"`
	EndedBy string     `json:"ended_by,omitempty"`
	EndedAt *time.Time `json:"ended_at,omitempty"`
	// PPUMinutes is how many PPU minutes it was billed.
	PPUMinutes int64 `json:"ppu_minutes,omitempty"`
	// CanControl says whether the viewer may end it.
	CanControl bool `json:"can_control"`
}

// Overview is the License tab of an account.
type Overview struct {
	Account    string `json:"account"`
	Name       string `json:"name"`
	Seats      int64  `json:"seats"`
	InUse      int64  `json:"in_use"`
	Free       int64  `json:"free"`
	Over       int64  `json:"over"`
	PPUEnabled bool   `json:"ppu_enabled"`
	PPUBalance int64  `json:"ppu_balance"`
	// PPUSessions counts the sessions that hold a PPU seat: standby, active
	// and terminating (only active ones are billed).
	PPUSessions int64 `json:"ppu_sessions"`
	PPUKeys     int64 `json:"ppu_keys"`
	// Degraded is set while Redis is unreachable: the numbers are the last
	// known and nothing new is granted.
	Degraded bool `json:"degraded,omitempty"`
}

// Grant is a granted session: its state, seat kind, fencing token and
// lease.
type Grant struct {
	Session Session `json:"session"`
	// Fence is the fencing token of this grant; renewals and releases with
	// another token are refused.
	Fence string `json:"fence"`
	// LeaseSec is the lease length; renew well before it runs out.
	LeaseSec int `json:"lease_sec"`
	// HeartbeatSec is how often the server wants a heartbeat.
	HeartbeatSec int `json:"heartbeat_sec"`
}

// Scopes of the view and control permissions.
const (
	ScopeNone   = "none"
	ScopeOwn    = "own"
	ScopeDomain = "domain"
)

// Roles of users.
const (
	RoleOwner  = "owner"
	RoleAdmin  = "admin"
	RoleMember = "member"
)

// User statuses.
const (
	UserActive  = "active"
	UserBlocked = "blocked"
)

// Counting modes of an account.
const (
	ModeUserDevice = "user_device"
	ModeUser       = "user"
	ModeSession    = "session"
)

// User is a user of an account as admins see it.
type User struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Role     string `json:"role"`
	Status   string `json:"status"`
	MaxSeats *int   `json:"max_seats,omitempty"`
	// View and Control are the user's overrides ("" follows the account).
	View    string `json:"view,omitempty"`
	Control string `json:"control,omitempty"`
	// EffectiveView and EffectiveControl are what applies.
	EffectiveView    string `json:"effective_view"`
	EffectiveControl string `json:"effective_control"`
	SeatsHeld        int    `json:"seats_held"`
}

// Settings are an account's settings.
type Settings struct {
	Name       string `json:"name"`
	Seats      int64  `json:"seats"`
	Mode       string `json:"mode"`
	PPUEnabled bool   `json:"ppu_enabled"`
	Promote    bool   `json:"promote"`
	View       string `json:"view"`
	Control    string `json:"control"`
	NoticeSec  int64  `json:"notice_sec"`
	StandbySec int64  `json:"standby_sec"`
	PausedSec  int64  `json:"paused_sec"`
}

// LedgerEntry is one PPU ledger entry.
type LedgerEntry struct {
	Kind      string    `json:"kind"` // minute or topup
	SessionID string    `json:"session_id,omitempty"`
	UserID    string    `json:"user_id,omitempty"`
	Minute    int64     `json:"minute,omitempty"`
	Delta     int64     `json:"delta"`
	Balance   int64     `json:"balance"`
	At        time.Time `json:"at"`
	By        string    `json:"by,omitempty"`
	Note      string    `json:"note,omitempty"`
}

// EndResult is one session's outcome in End Selected Sessions.
type EndResult struct {
	ID      string       `json:"id"`
	OK      bool         `json:"ok"`
	Error   *ErrorDetail `json:"error,omitempty"`
	Session *Session     `json:"session,omitempty"`
}
