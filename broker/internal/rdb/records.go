package rdb

import json "github.com/goccy/go-json"

// The records as the scripts store them (JSON in hashes). The broker turns
// them into its own types; the store never imports the broker.

// SessionRec is a session as stored. Times are ms on the Redis clock.
type SessionRec struct {
	ID           string `json:"id"`
	User         string `json:"user"`
	UserName     string `json:"user_name,omitempty"`
	Device       string `json:"device"`
	DeviceName   string `json:"device_name,omitempty"`
	State        string `json:"state"`
	Kind         string `json:"kind,omitempty"`
	Code         string `json:"code,omitempty"`
	Fence        string `json:"fence,omitempty"`
	Created      int64  `json:"created,omitempty,string"`
	Activated    int64  `json:"activated,omitempty,string"`
	Joined       int64  `json:"joined,omitempty,string"`
	LeaseUntil   int64  `json:"lease_until,omitempty,string"`
	Deadline     int64  `json:"deadline,omitempty,string"`
	StandbyUntil int64  `json:"standby_until,omitempty,string"`
	PausedAt     int64  `json:"paused_at,omitempty,string"`
	PausedUntil  int64  `json:"paused_until,omitempty,string"`
	Reason       string `json:"reason,omitempty"`
	By           string `json:"by,omitempty"`
	PPUms        int64  `json:"ppu_ms,omitempty,string"`
	PPUAt        int64  `json:"ppu_at,omitempty,string"`
	Billed       int64  `json:"billed,omitempty,string"`
	Promoted     int64  `json:"promoted,omitempty,string"`
	// At is when the session last changed state or seat kind.
	At int64 `json:"at,omitempty,string"`
}

// EndedAt is when an ended session ended (its last change), else 0.
func (r SessionRec) EndedAt() int64 {
	if r.State == "ended" {
		return r.At
	}
	return 0
}

// UserRec is a user as stored in the account's users hash.
type UserRec struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Role     string `json:"role"`
	Status   string `json:"status"`
	MaxSeats *int   `json:"max_seats,omitempty"`
	View     string `json:"view,omitempty"`
	Control  string `json:"control,omitempty"`
	Created  int64  `json:"created,omitempty"`
}

// LedgerEntry is one PPU ledger entry: a billed minute (delta -1) or a
// top-up (delta > 0). Balance is the balance after the entry.
type LedgerEntry struct {
	Kind    string `json:"kind"`
	Session string `json:"session,omitempty"`
	User    string `json:"user,omitempty"`
	Minute  int64  `json:"minute,omitempty"`
	Delta   int64  `json:"delta"`
	Balance int64  `json:"balance"`
	At      int64  `json:"at"`
	By      string `json:"by,omitempty"`
	Note    string `json:"note,omitempty"`
	Key     string `json:"key,omitempty"`
}

// List decodes a JSON array, and also the empty object that Redis's cjson
// makes of an empty Lua table.
type List[T any] []T

// UnmarshalJSON implements json.Unmarshaler.
func (l *List[T]) UnmarshalJSON(b []byte) error {
	if string(b) == "{}" {
		*l = nil
		return nil
	}
	return json.Unmarshal(b, (*[]T)(l))
}

// Denial is the payload of a refused grant: the user's sessions it may end
// to make room.
type Denial struct {
	Own List[SessionRec] `json:"own"`
}

// ItemResult is one session's outcome in a batch (renew, end).
type ItemResult struct {
	ID      string      `json:"id"`
	Status  Status      `json:"status"`
	Session *SessionRec `json:"session,omitempty"`
}

// Event is one change an account script published.
type Event struct {
	Type      string      `json:"type"`
	Session   *SessionRec `json:"session,omitempty"`
	User      *UserRec    `json:"user,omitempty"`
	Code      string      `json:"code,omitempty"`
	Balance   int64       `json:"balance,omitempty"`
	Threshold int64       `json:"threshold,omitempty"`
	Seat      string      `json:"seat,omitempty"`
	UserID    string      `json:"user_id,omitempty"`
}

// EventBatch is the events of one pub/sub message (see DecodeEvents).
type EventBatch struct {
	Account string      `json:"account"`
	Events  List[Event] `json:"events"`
	// End is set on the message that ends what one run of the account code
	// published: the sessions and the account after it are as that run
	// left them, a state that existed.
	End bool `json:"-"`
}
