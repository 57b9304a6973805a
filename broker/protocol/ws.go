package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Version is the websocket protocol version a client names in its hello.
// docs/protocol.md describes it.
const Version = "seatbroker.v1"

// WSPath is where a node serves the websocket.
const WSPath = "/ws"

// MaxFrame is the largest message a node reads; a bigger one closes the
// connection with 1009 (message too big).
const MaxFrame = 16 << 10

// MaxHelloSessions is how many sessions a hello may carry back.
const MaxHelloSessions = 64

// Roles of a websocket connection.
const (
	// RoleDesktop is a signed-in user on a device: opens sessions, makes
	// codes, sends heartbeats that renew its seats.
	RoleDesktop = "desktop"
	// RoleRemote is the customer side: it joins one session by its code
	// and is authorized for that session only.
	RoleRemote = "remote"
)

// Message types a client sends.
const (
	TypeHello     = "hello"
	TypeOpen      = "open"
	TypeJoin      = "join"
	TypeHeartbeat = "heartbeat"
	TypePause     = "pause"
	TypeResume    = "resume"
	TypeClose     = "close"
)

// Message types a server sends.
const (
	// TypeWelcome answers hello.
	TypeWelcome = "welcome"
	// TypeGranted answers open and resume: a session with its seat.
	TypeGranted = "granted"
	// TypeDenied answers open and resume refused by the seat rules.
	TypeDenied = "denied"
	// TypeJoined answers join.
	TypeJoined = "joined"
	// TypePaused answers pause.
	TypePaused = "paused"
	// TypeAck answers heartbeat, with every session's state and any
	// pending ending notice.
	TypeAck = "heartbeat_ack"
	// TypeSession tells a participant its session changed (a remote side
	// joined, it was paused or resumed elsewhere).
	TypeSession = "session"
	// TypeNotice tells every participant that the session is being ended.
	TypeNotice = "notice"
	// TypeEnded says the session ended; nothing more is sent about it.
	// It also answers close.
	TypeEnded = "ended"
	// TypeWarning is a warning (a low PPU balance).
	TypeWarning = "warning"
	// TypeError answers a request that failed, or a message that could
	// not be read (then its id is empty).
	TypeError = "error"
)

// SessionRef names a session and the fencing token its holder has.
type SessionRef struct {
	ID    string `json:"id"`
	Fence string `json:"fence"`
}

// ClientMessage is every message a client sends: one envelope whose type
// says which fields mean something. ID is the client's request id, echoed
// in the reply.
type ClientMessage struct {
	Type string `json:"type"`
	ID   string `json:"id,omitempty"`

	// hello
	Version    string       `json:"version,omitempty"`
	Role       string       `json:"role,omitempty"`
	Token      string       `json:"token,omitempty"`
	Account    string       `json:"account,omitempty"`
	Name       string       `json:"name,omitempty"`
	Password   string       `json:"password,omitempty"`
	DeviceID   string       `json:"device_id,omitempty"`
	DeviceName string       `json:"device_name,omitempty"`
	Sessions   []SessionRef `json:"sessions,omitempty"`

	// open
	WithCode bool `json:"with_code,omitempty"`
	// join
	Code string `json:"code,omitempty"`
	// pause, resume, close
	SessionID string `json:"session_id,omitempty"`
}

// Identity is who a desktop connection is signed in as.
type Identity struct {
	Account string `json:"account"`
	UserID  string `json:"user_id"`
	Name    string `json:"name"`
	Role    string `json:"role"`
}

// SessionStatus is one session's state in welcome and heartbeat_ack: the
// session (with its fence while the connection holds it), any pending
// ending notice, or the error that detached it.
type SessionStatus struct {
	ID      string       `json:"id"`
	Fence   string       `json:"fence,omitempty"`
	Session *Session     `json:"session,omitempty"`
	Notice  *Notice      `json:"notice,omitempty"`
	Error   *ErrorDetail `json:"error,omitempty"`
}

// Notice is the warning that a session is being ended. Deadline is on the
// server's (Redis's) clock; MSLeft is what was left when the server sent
// it, so clients count down on their own monotonic clock.
type Notice struct {
	SessionID   string    `json:"session_id"`
	Deadline    time.Time `json:"deadline"`
	SecondsLeft int64     `json:"seconds_left"`
	MSLeft      int64     `json:"ms_left"`
	Reason      string    `json:"reason"`
	EndedBy     string    `json:"ended_by,omitempty"`
}

// Warning is a warning to the desktop clients of PPU sessions.
type Warning struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	Balance   int64  `json:"balance"`
	Threshold int64  `json:"threshold"`
}

// ServerMessage is every message a server sends, in the same envelope.
type ServerMessage struct {
	Type string `json:"type"`
	ID   string `json:"id,omitempty"`

	// welcome
	Version      string     `json:"version,omitempty"`
	Role         string     `json:"role,omitempty"`
	User         *Identity  `json:"user,omitempty"`
	Token        string     `json:"token,omitempty"`
	TokenExpires *time.Time `json:"token_expires,omitempty"`
	// HeartbeatMS is how often to send a heartbeat; LeaseMS how long a
	// seat lives without one (welcome, granted, heartbeat_ack).
	HeartbeatMS int64 `json:"heartbeat_ms,omitempty"`
	LeaseMS     int64 `json:"lease_ms,omitempty"`

	// granted, joined, paused, session, ended
	Session *Session `json:"session,omitempty"`
	Fence   string   `json:"fence,omitempty"`
	// welcome, heartbeat_ack
	Sessions []SessionStatus `json:"sessions,omitempty"`
	// notice
	Notice *Notice `json:"notice,omitempty"`
	// ended
	SessionID string `json:"session_id,omitempty"`
	Reason    string `json:"reason,omitempty"`
	// warning
	Warning *Warning `json:"warning,omitempty"`
	// denied, error
	Error *ErrorDetail `json:"error,omitempty"`
}

// DecodeError is a message that could not be read. It is sent back as an
// error message with code invalid_request and the offending field.
type DecodeError struct {
	Field  string
	Reason string
}

func (e *DecodeError) Error() string {
	if e.Field == "" {
		return "malformed message: " + e.Reason
	}
	return "invalid " + e.Field + ": " + e.Reason
}

// Detail is the error's wire form.
func (e *DecodeError) Detail() ErrorDetail {
	return ErrorDetail{Code: CodeInvalidRequest, Message: e.Error(), Field: e.Field}
}

// ErrNotJSON is the reason for a frame that is not one JSON object.
var ErrNotJSON = errors.New("not a JSON object")

func decodeErr(field, reason string) error { return &DecodeError{Field: field, Reason: reason} }

// DecodeClient reads one client message. It refuses malformed JSON, a
// frame that is not exactly one object, unknown types, and messages that
// lack what their type needs, each with a *DecodeError.
func DecodeClient(data []byte) (ClientMessage, error) {
	var m ClientMessage
	if err := decodeOne(data, &m); err != nil {
		return ClientMessage{}, err
	}
	if err := m.Validate(); err != nil {
		return ClientMessage{}, err
	}
	return m, nil
}

// DecodeServer reads one server message. Unknown types are refused, so a
// client notices a server that speaks a newer protocol.
func DecodeServer(data []byte) (ServerMessage, error) {
	var m ServerMessage
	if err := decodeOne(data, &m); err != nil {
		return ServerMessage{}, err
	}
	switch m.Type {
	case TypeWelcome, TypeGranted, TypeDenied, TypeJoined, TypePaused, TypeAck,
		TypeSession, TypeNotice, TypeEnded, TypeWarning, TypeError:
	case "":
		return ServerMessage{}, decodeErr("type", "is required")
	default:
		return ServerMessage{}, decodeErr("type", "unknown message type")
	}
	return m, nil
}

func decodeOne(data []byte, v any) error {
	if !utf8.Valid(data) {
		return decodeErr("", "not UTF-8")
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return decodeErr("", ErrNotJSON.Error())
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return decodeErr(te.Field, "has the wrong type")
		}
		return decodeErr("", "malformed JSON")
	}
	if len(bytes.TrimSpace(trimmed[dec.InputOffset():])) > 0 {
		return decodeErr("", "more than one JSON value")
	}
	return nil
}

// Field limits of client messages.
const (
	maxIDLen   = 64
	maxTextLen = 200
)

// Validate checks that a message has what its type needs.
func (m ClientMessage) Validate() error {
	if len(m.ID) > maxIDLen {
		return decodeErr("id", "is too long")
	}
	for _, f := range []struct{ name, v string }{
		{"token", m.Token}, {"account", m.Account}, {"name", m.Name}, {"password", m.Password},
		{"device_id", m.DeviceID}, {"device_name", m.DeviceName}, {"code", m.Code},
		{"session_id", m.SessionID}, {"version", m.Version}, {"role", m.Role},
	} {
		if len(f.v) > maxTextLen {
			return decodeErr(f.name, "is too long")
		}
	}
	switch m.Type {
	case TypeHello:
		if m.Version == "" {
			return decodeErr("version", "is required")
		}
		if m.Version != Version {
			return decodeErr("version", fmt.Sprintf("unsupported; this server speaks %s", Version))
		}
		if m.Role != RoleDesktop && m.Role != RoleRemote {
			return decodeErr("role", "must be desktop or remote")
		}
		if len(m.Sessions) > MaxHelloSessions {
			return decodeErr("sessions", fmt.Sprintf("at most %d", MaxHelloSessions))
		}
		for _, s := range m.Sessions {
			if s.ID == "" || len(s.ID) > maxIDLen || len(s.Fence) > maxIDLen {
				return decodeErr("sessions", "each needs an id and its fence")
			}
		}
		if m.Password != "" && (m.Account == "" || m.Name == "") {
			return decodeErr("account", "a password needs the account and the user name")
		}
	case TypeJoin:
		if strings.TrimSpace(m.Code) == "" {
			return decodeErr("code", "is required")
		}
	case TypePause, TypeResume, TypeClose:
		if m.SessionID == "" {
			return decodeErr("session_id", "is required")
		}
	case TypeOpen, TypeHeartbeat:
	case "":
		return decodeErr("type", "is required")
	default:
		return decodeErr("type", "unknown message type")
	}
	return nil
}

// NoticeOf returns the ending notice of a terminating session, or nil.
func NoticeOf(s Session) *Notice {
	if s.State != StateTerminating || s.Deadline == nil {
		return nil
	}
	return &Notice{SessionID: s.ID, Deadline: *s.Deadline, SecondsLeft: s.SecondsLeft,
		MSLeft: s.SecondsLeft * 1000, Reason: s.Reason, EndedBy: s.EndedBy}
}
