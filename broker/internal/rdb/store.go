package rdb

import (
	"context"
	"errors"
	"fmt"
	json "github.com/goccy/go-json"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Defaults are the durations the scripts use when an account sets none.
type Defaults struct {
	Lease     time.Duration
	Standby   time.Duration
	Paused    time.Duration
	Notice    time.Duration
	Minute    time.Duration
	Retention time.Duration
	Warn      []int
	CatchUp   int
	// RetainMax is the most ended sessions an account keeps (0: 100,000).
	RetainMax int
}

// Store runs the scripts and reads the state. It knows nothing of
// permissions or wire types: the broker does.
type Store struct {
	client redis.UniversalClient
	keys   Keys
	batch  *batcher
	// tokenListed, when set (tests), runs in PutToken between filing the
	// token in its lists and setting its global lookup.
	tokenListed func()
	// tokenUnlisting, when set (tests), runs in DeleteToken between
	// deleting the token's global lookup and unlisting it.
	tokenUnlisting func()
}

// ErrUnexpectedReply means a script answered in a shape this code does
// not know: a bug, or a script of another version.
var ErrUnexpectedReply = errors.New("rdb: unexpected reply")

// New returns a store on client. Close it to stop its batching goroutines.
func New(client redis.UniversalClient, prefix string, d Defaults) *Store {
	if d.CatchUp <= 0 {
		d.CatchUp = 100
	}
	if d.RetainMax <= 0 {
		d.RetainMax = 100_000
	}
	warn := make([]string, len(d.Warn))
	for i, w := range d.Warn {
		warn[i] = strconv.Itoa(w)
	}
	cfg := fmt.Sprintf("%d %d %d %d %d %d %d %d %s", d.Lease.Milliseconds(), d.Standby.Milliseconds(),
		d.Paused.Milliseconds(), d.Notice.Milliseconds(), d.Minute.Milliseconds(),
		d.Retention.Milliseconds(), d.CatchUp, d.RetainMax, strings.Join(warn, ","))
	return &Store{client: client, keys: NewKeys(prefix), batch: newBatcher(client, NewKeys(prefix), cfg)}
}

// Close stops the batching goroutines. It is idempotent.
func (s *Store) Close() { s.batch.close() }

// Keys returns the store's key names.
func (s *Store) Keys() Keys { return s.keys }

// Client returns the Redis client.
func (s *Store) Client() redis.UniversalClient { return s.client }

// LoadScripts loads the account library as a Redis function where Redis
// has functions (7 and later; not miniredis), and the scripts into Redis's
// script cache, so the first calls after start need no fallback to EVAL:
// the account script only when there is no function to run instead.
func (s *Store) LoadScripts(ctx context.Context) error {
	ferr := loadFunction(ctx, s.client)
	s.batch.fcall.Store(ferr == nil)
	for _, sc := range allScripts {
		if sc == scriptAccount && ferr == nil {
			continue
		}
		if err := sc.Load(ctx, s.client).Err(); err != nil {
			return fmt.Errorf("load script: %w", err)
		}
	}
	if ferr != nil && !isUnknownCommand(ferr) {
		return fmt.Errorf("load function: %w", ferr)
	}
	return nil
}

// UsesFunctions says whether account calls run as a Redis function.
func (s *Store) UsesFunctions() bool { return s.batch.fcall.Load() }

func isUnknownCommand(err error) bool {
	return strings.Contains(strings.ToLower(err.Error()), "unknown command")
}

// Result is a decoded account script reply.
type Result struct {
	Status  Status
	Payload []byte
}

// runAccount runs one operation of the account script (through the
// batcher, which also refiles the account in the global timer index when
// its next timer moved earlier).
func (s *Store) runAccount(ctx context.Context, op, acct string, args ...any) (Result, error) {
	return s.batch.run(ctx, acct, op, args)
}

func decodeInto(r Result, dst any) error {
	if string(r.Payload) == "[]" {
		return nil // an empty Lua table: miniredis's cjson makes it an array
	}
	if err := json.Unmarshal(r.Payload, dst); err != nil {
		return fmt.Errorf("%w: %w", ErrUnexpectedReply, err)
	}
	return nil
}

// SessionReply is the reply of a script that answers with one session, or
// with a denial.
type SessionReply struct {
	Status  Status
	Session *SessionRec
	Own     []SessionRec
	What    string
}

func (s *Store) sessionReply(ctx context.Context, op, acct string, args ...any) (SessionReply, error) {
	r, err := s.runAccount(ctx, op, acct, args...)
	if err != nil {
		return SessionReply{}, err
	}
	if r.Status == StatusOK {
		// the answer is the session itself
		var rec SessionRec
		if err := decodeInto(r, &rec); err != nil {
			return SessionReply{}, err
		}
		return SessionReply{Status: r.Status, Session: &rec}, nil
	}
	var p struct {
		Session *SessionRec      `json:"session"`
		Own     List[SessionRec] `json:"own"`
		What    string           `json:"what"`
	}
	if err := decodeInto(r, &p); err != nil {
		return SessionReply{}, err
	}
	return SessionReply{Status: r.Status, Session: p.Session, Own: p.Own, What: p.What}, nil
}

// Open opens a session (standby when code is not empty, else active).
func (s *Store) Open(ctx context.Context, acct, sid, uid, device, deviceName, code string) (SessionReply, error) {
	return s.sessionReply(ctx, opOpen, acct, sid, uid, device, deviceName, code)
}

// Join activates a standby session whose code matches.
func (s *Store) Join(ctx context.Context, acct, sid, code string) (SessionReply, error) {
	return s.sessionReply(ctx, opJoin, acct, sid, code)
}

// Pause pauses the user's own active session. fence is the pauser's
// fencing token, "" when it holds none (the user through the REST API);
// another token than the session's current one answers StatusStale.
func (s *Store) Pause(ctx context.Context, acct, sid, uid, fence string) (SessionReply, error) {
	return s.sessionReply(ctx, opPause, acct, sid, uid, fence)
}

// Resume resumes the user's own paused session.
func (s *Store) Resume(ctx context.Context, acct, sid, uid string) (SessionReply, error) {
	return s.sessionReply(ctx, opResume, acct, sid, uid)
}

// FenceRef names a session and the fencing token its holder has.
type FenceRef struct {
	ID    string `json:"id"`
	Fence string `json:"fence"`
}

// Renew renews the leases of a user's sessions. The results are in the
// order of refs, each with its ref's id.
func (s *Store) Renew(ctx context.Context, acct, uid string, refs []FenceRef) ([]ItemResult, time.Duration, error) {
	r, err := s.runAccount(ctx, opRenew, acct, uid, renewList(refs))
	if err != nil {
		return nil, 0, err
	}
	if r.Status != StatusOK {
		return nil, 0, statusErr(r.Status)
	}
	var p struct {
		Results List[ItemResult] `json:"results"`
		Lease   int64            `json:"lease"`
	}
	if err := decodeInto(r, &p); err != nil {
		return nil, 0, err
	}
	if len(p.Results) != len(refs) {
		return nil, 0, fmt.Errorf("%w: renew answered %d of %d sessions", ErrUnexpectedReply, len(p.Results), len(refs))
	}
	for i := range p.Results {
		p.Results[i].ID = refs[i].ID // (renewList may have sent "-" for it)
	}
	return p.Results, time.Duration(p.Lease) * time.Millisecond, nil
}

// renewList is renew's list of sessions as the account code reads it (a
// heartbeat is most of what it runs, and decoding JSON cost it more than
// the rest of the argument's handling): "<id> <fence> <id> <fence> ...",
// one space apart. A session id (a UUID) and a fencing token (digits)
// hold no space; an id or token that does (never one of ours) goes as
// "-", which names no session and is no session's token, so it is
// answered not_found or stale all the same.
func renewList(refs []FenceRef) string {
	var b strings.Builder
	for i, r := range refs {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(spaceless(r.ID))
		b.WriteByte(' ')
		b.WriteString(spaceless(r.Fence))
	}
	return b.String()
}

func spaceless(v string) string {
	if v == "" || strings.ContainsRune(v, ' ') {
		return "-"
	}
	return v
}

// CloseSession ends a session at once (a participant closes it): uid is
// the desktop side's user, whose own sessions only it may close, or "" for
// the remote side. fence is the closer's fencing token, "" when it holds
// none (the remote side); another token than the session's current one
// answers StatusStale.
func (s *Store) CloseSession(ctx context.Context, acct, sid, uid, fence, by, reason string) (SessionReply, error) {
	return s.sessionReply(ctx, opClose, acct, sid, uid, fence, by, reason)
}

// End ends sessions the way End Selected Sessions does: active ones get
// the notice, standby and paused ones end at once. actor is the acting
// user's id ("" for the system).
func (s *Store) End(ctx context.Context, acct, actor, by, reason string, ids []string) ([]ItemResult, error) {
	list, _ := json.Marshal(ids)
	r, err := s.runAccount(ctx, opEnd, acct, actor, by, reason, string(list))
	if err != nil {
		return nil, err
	}
	if r.Status != StatusOK {
		return nil, statusErr(r.Status)
	}
	var p struct {
		Results List[ItemResult] `json:"results"`
	}
	if err := decodeInto(r, &p); err != nil {
		return nil, err
	}
	return p.Results, nil
}

// Block blocks (or unblocks) a user; blocking ends its sessions.
func (s *Store) Block(ctx context.Context, acct, uid string, block bool, by string) (UserRec, error) {
	flag := "0"
	if block {
		flag = "1"
	}
	r, err := s.runAccount(ctx, opBlock, acct, uid, flag, by)
	if err != nil {
		return UserRec{}, err
	}
	if r.Status != StatusOK {
		return UserRec{}, statusErr(r.Status)
	}
	var p struct {
		User UserRec `json:"user"`
	}
	if err := decodeInto(r, &p); err != nil {
		return UserRec{}, err
	}
	return p.User, nil
}

// UpdateSettings sets account fields (strings, validated by the caller).
// It answers StatusBadState with the refused field.
func (s *Store) UpdateSettings(ctx context.Context, acct string, fields map[string]string) (map[string]string, error) {
	js, _ := json.Marshal(fields)
	r, err := s.runAccount(ctx, opSettings, acct, string(js))
	if err != nil {
		return nil, err
	}
	if r.Status != StatusOK {
		var p struct {
			Field string `json:"field"`
		}
		_ = decodeInto(r, &p)
		return nil, &StatusError{Status: r.Status, Field: p.Field}
	}
	var p struct {
		Account map[string]string `json:"account"`
	}
	if err := decodeInto(r, &p); err != nil {
		return nil, err
	}
	return p.Account, nil
}

// CreateAccount creates an account with its owner and files it in the
// account set. StatusExists when the id is taken.
func (s *Store) CreateAccount(ctx context.Context, acct string, fields map[string]string, owner UserRec) error {
	js, _ := json.Marshal(fields)
	oj, _ := json.Marshal(owner)
	r, err := s.runAccount(ctx, opAccountCreate, acct, acct, string(js), string(oj))
	if err != nil {
		return err
	}
	if r.Status != StatusOK {
		return statusErr(r.Status)
	}
	return s.client.SAdd(ctx, s.keys.Accounts(), acct).Err()
}

// PutUser adds (create) or updates a user. A new user past maxUsers is
// refused with StatusBadState, field "users".
func (s *Store) PutUser(ctx context.Context, acct string, u UserRec, create bool, maxUsers int) (UserRec, error) {
	js, _ := json.Marshal(u)
	flag := "0"
	if create {
		flag = "1"
	}
	r, err := s.runAccount(ctx, opUserPut, acct, string(js), flag, strconv.Itoa(maxUsers))
	if err != nil {
		return UserRec{}, err
	}
	if r.Status != StatusOK {
		var p struct {
			Field string `json:"field"`
		}
		_ = decodeInto(r, &p)
		return UserRec{}, &StatusError{Status: r.Status, Field: p.Field}
	}
	var p struct {
		User UserRec `json:"user"`
	}
	if err := decodeInto(r, &p); err != nil {
		return UserRec{}, err
	}
	return p.User, nil
}

// TopUp adds PPU minutes under an idempotency key; it returns the balance
// and whether the key had been used already.
func (s *Store) TopUp(ctx context.Context, acct string, minutes int64, key, by, note string) (int64, bool, error) {
	r, err := s.runAccount(ctx, opTopUp, acct, minutes, key, by, note)
	if err != nil {
		return 0, false, err
	}
	if r.Status != StatusOK {
		return 0, false, statusErr(r.Status)
	}
	var p struct {
		Balance   int64 `json:"balance"`
		Duplicate bool  `json:"duplicate"`
	}
	if err := decodeInto(r, &p); err != nil {
		return 0, false, err
	}
	return p.Balance, p.Duplicate, nil
}

// StatusError is a script's business outcome other than OK.
type StatusError struct {
	Status Status
	Field  string
}

func (e *StatusError) Error() string {
	if e.Field != "" {
		return "rdb: " + e.Status.String() + " (" + e.Field + ")"
	}
	return "rdb: " + e.Status.String()
}

func statusErr(st Status) error { return &StatusError{Status: st} }
