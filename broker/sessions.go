package broker

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"math/big"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/seatbroker/seatbroker/broker/internal/rdb"
	"github.com/seatbroker/seatbroker/broker/protocol"
	"github.com/seatbroker/seatbroker/internal/clientaddr"
)

// Input limits.
const (
	MaxDeviceID   = 128
	MaxDeviceName = 128
	MaxBatch      = 500 // sessions in one heartbeat
	// MaxEnd is how many sessions one End Selected Sessions may name:
	// as many as the page lists.
	MaxEnd = 1000
	// EndChunk is how many sessions one call of the account code ends.
	EndChunk = 100
	// MaxSessionOffset bounds a session list's offset: a list keeps
	// offset+limit sessions while it reads the account.
	MaxSessionOffset = 100_000
	// SessionScanChunk is how many sessions one Redis command of a session
	// list reads.
	SessionScanChunk = 500
	// MaxPausedSessions is how many paused sessions a user may keep (rules.lua).
	MaxPausedSessions = 100
)

// OpenRequest opens a session for a user on a device.
type OpenRequest struct {
	Account    string
	UserID     string
	DeviceID   string
	DeviceName string
	// WithCode generates a session code: the session waits in standby,
	// holding its seat, until the remote side joins.
	WithCode bool
}

// Open opens a session by the seat rules. A refusal is a *DeniedError.
func (b *Broker) Open(ctx context.Context, req OpenRequest) (protocol.Grant, error) {
	if err := checkText("device_id", req.DeviceID, MaxDeviceID, true); err != nil {
		return protocol.Grant{}, err
	}
	if err := checkText("device_name", req.DeviceName, MaxDeviceName, false); err != nil {
		return protocol.Grant{}, err
	}
	if !validID(req.UserID) || !validAccount(req.Account) {
		return protocol.Grant{}, ErrNotFound
	}
	sid := uuid.NewString()
	code := ""
	if req.WithCode {
		var err error
		if code, err = b.reserveCode(ctx, req.Account, sid); err != nil {
			return protocol.Grant{}, err
		}
	}
	r, err := b.store.Open(ctx, req.Account, sid, req.UserID, req.DeviceID, req.DeviceName, code)
	if err == nil && r.Status != rdb.StatusOK && code != "" {
		_ = b.store.DropCode(ctx, code)
	}
	return b.grant(ctx, req.Account, req.UserID, r, err)
}

func (b *Broker) grant(ctx context.Context, acct, uid string, r rdb.SessionReply, err error) (protocol.Grant, error) {
	if err != nil {
		return protocol.Grant{}, storeErr(err)
	}
	if r.Status != rdb.StatusOK {
		return protocol.Grant{}, b.denied(ctx, acct, uid, r)
	}
	if r.Session == nil {
		return protocol.Grant{}, rdb.ErrUnexpectedReply
	}
	return protocol.Grant{
		Session:      ownView(*r.Session, b.Now(ctx, acct)),
		Fence:        r.Session.Fence,
		LeaseSec:     int(b.cfg.Lease / time.Second),
		HeartbeatSec: int(b.cfg.Heartbeat / time.Second),
	}, nil
}

// ownView is a session as its own user sees it: it may control it.
func ownView(r rdb.SessionRec, now time.Time) protocol.Session {
	s := view(r, now)
	s.CanControl = true
	return s
}

// denied is a refusal of the seat rules. Its list is the user's own
// seat-holding sessions that the user may end to make room (SPEC, seat
// rule 5): those its control setting lets it end, so with control none
// the list is empty. (Its permissions are read only here, on a refusal.)
func (b *Broker) denied(ctx context.Context, acct, uid string, r rdb.SessionReply) error {
	err := statusErr(r.Status)
	switch r.Status {
	case rdb.StatusUserLimit, rdb.StatusAccountLimit, rdb.StatusPPUExhausted, rdb.StatusUserBlocked:
		own := make([]protocol.Session, 0, len(r.Own))
		if len(r.Own) > 0 {
			// a user whose permissions cannot be read is offered nothing
			if p, perr := b.PrincipalFor(ctx, acct, uid); perr == nil {
				now := b.Now(ctx, acct)
				for _, s := range r.Own {
					if p.CanControl(s.User, s.State) {
						own = append(own, ownView(s, now))
					}
				}
			}
		}
		return &DeniedError{Err: err, PageURL: b.cfg.PageURL, Own: own}
	}
	return err
}

// reserveCode draws a code from a cryptographic source and files it, so
// that no two live sessions share one.
func (b *Broker) reserveCode(ctx context.Context, acct, sid string) (string, error) {
	limit := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(b.cfg.CodeDigits)), nil)
	for range 8 {
		n, err := rand.Int(rand.Reader, limit)
		if err != nil {
			return "", err
		}
		code := n.Text(10)
		code = strings.Repeat("0", b.cfg.CodeDigits-len(code)) + code
		ok, err := b.store.ReserveCode(ctx, code, acct, sid, b.codeTTL())
		if err != nil {
			return "", storeErr(err)
		}
		if ok {
			return code, nil
		}
	}
	return "", errors.Join(ErrUnavailable, errors.New("no free session code"))
}

// codeTTL bounds how long a code's routing entry lives; the session's own
// standby time decides whether the code still works.
func (b *Broker) codeTTL() time.Duration { return max(b.cfg.Standby, MaxStandby) + time.Minute }

// Join joins a standby session by its code, from the remote side at
// source (an address, for the rate limit on wrong codes, which counts an
// IPv6 address's /64 as one: clientaddr.LimitKey). Every attempt
// takes its place in the source's limit before the code is looked up, so
// wrong codes sent together over many connections cannot pass the limit
// all at once; only a join that succeeds gives its place back.
func (b *Broker) Join(ctx context.Context, code, source string) (protocol.Session, string, error) {
	lim := limit{name: "join:" + clientaddr.LimitKey(source), rate: b.cfg.JoinRate}
	if err := b.take(ctx, lim); err != nil {
		return protocol.Session{}, "", err
	}
	s, acct, err := b.join(ctx, code)
	if err == nil {
		b.giveBack(ctx, lim) // only failed joins count against the source
	}
	return s, acct, err
}

func (b *Broker) join(ctx context.Context, code string) (protocol.Session, string, error) {
	if len(code) != b.cfg.CodeDigits || strings.Trim(code, "0123456789") != "" {
		return protocol.Session{}, "", ErrNotFound
	}
	acct, sid, err := b.store.ResolveCode(ctx, code)
	if err != nil {
		return protocol.Session{}, "", storeErr(err)
	}
	r, err := b.store.Join(ctx, acct, sid, code)
	if err != nil {
		return protocol.Session{}, "", storeErr(err)
	}
	if r.Status != rdb.StatusOK || r.Session == nil {
		return protocol.Session{}, "", ErrNotFound
	}
	_ = b.store.DropCode(ctx, code) // single use; the script refuses a second join anyway
	return view(*r.Session, b.Now(ctx, acct)), acct, nil
}

// RejoinPrefix starts every rejoin secret.
const RejoinPrefix = "sbr_"

// rejoinTTL is how long a rejoin secret lives after its last use: longer
// than any connection outage worth coming back from.
const rejoinTTL = 24 * time.Hour

// IssueRejoin gives the remote side of a session a secret to come back
// with when its connection is lost (codes are single use). Redis keeps
// only its SHA-256.
func (b *Broker) IssueRejoin(ctx context.Context, acct, sid string) (string, error) {
	buf := make([]byte, 32)
	if _, err := rand.Read(buf); err != nil {
		return "", err
	}
	secret := RejoinPrefix + base64.RawURLEncoding.EncodeToString(buf)
	if err := b.store.PutRejoin(ctx, hashToken(secret), acct, sid, rejoinTTL); err != nil {
		return "", storeErr(err)
	}
	return secret, nil
}

// Rejoin takes a remote side back into its session (sid) with the secret
// IssueRejoin gave it. A wrong secret, or another session's, is
// ErrNotFound; a session that has ended is returned as it is (the caller
// tells the remote side how it ended, and does not attach it).
func (b *Broker) Rejoin(ctx context.Context, sid, secret string) (protocol.Session, string, error) {
	if !strings.HasPrefix(secret, RejoinPrefix) || len(secret) > 100 || !validID(sid) {
		return protocol.Session{}, "", ErrNotFound
	}
	h := hashToken(secret)
	acct, got, err := b.store.ResolveRejoin(ctx, h)
	if isStatus(err, rdb.StatusNotFound) || (err == nil && got != sid) {
		return protocol.Session{}, "", ErrNotFound
	}
	if err != nil {
		return protocol.Session{}, "", storeErr(err)
	}
	r, err := b.store.Session(ctx, acct, sid)
	if isStatus(err, rdb.StatusNotFound) {
		return protocol.Session{}, "", ErrNotFound
	}
	if err != nil {
		return protocol.Session{}, "", storeErr(err)
	}
	if r.Joined == 0 {
		return protocol.Session{}, "", ErrNotFound
	}
	if r.State != protocol.StateEnded {
		_ = b.store.PutRejoin(ctx, h, acct, sid, rejoinTTL) // a fresh day
	}
	return view(r, b.Now(ctx, acct)), acct, nil
}

// SessionRef names a session and the fencing token its holder has.
type SessionRef struct {
	ID    string
	Fence string
}

// RenewResult is one session's outcome of a heartbeat. Err is nil,
// ErrNotFound or a *StaleError; Session carries any pending ending notice.
type RenewResult struct {
	ID      string
	Err     error
	Session protocol.Session
}

// Renew renews the leases of a user's sessions: the heartbeat. A client
// that reconnects renews with the ids and tokens it had, and keeps its
// sessions and seat.
func (b *Broker) Renew(ctx context.Context, acct, uid string, refs []SessionRef) ([]RenewResult, error) {
	if len(refs) > MaxBatch {
		return nil, invalid("sessions", "too many")
	}
	if len(refs) == 0 {
		return nil, nil
	}
	if !validAccount(acct) {
		return nil, ErrNotFound
	}
	in := make([]rdb.FenceRef, len(refs))
	for i, r := range refs {
		in[i] = rdb.FenceRef{ID: r.ID, Fence: r.Fence}
	}
	res, _, err := b.store.Renew(ctx, acct, uid, in)
	if err != nil {
		return nil, storeErr(err)
	}
	out := make([]RenewResult, len(res))
	now := b.Now(ctx, acct)
	for i, r := range res {
		out[i] = RenewResult{ID: r.ID, Err: statusErr(r.Status)}
		if r.Session != nil {
			out[i].Session = ownView(*r.Session, now)
		}
	}
	return out, nil
}

// Pause pauses the user's own active session, freeing its seat. fence is
// the fencing token of the holder that pauses it (a desktop client: the
// token of its grant), or "" for the user acting on its own authority,
// who holds no lease (the REST API). A token other than the session's
// current one is refused with a *StaleError: a grant replaced it.
func (b *Broker) Pause(ctx context.Context, acct, uid, sid, fence string) (protocol.Session, error) {
	if !validID(sid) || !validAccount(acct) {
		return protocol.Session{}, ErrNotFound
	}
	r, err := b.store.Pause(ctx, acct, sid, uid, fence)
	if err != nil {
		return protocol.Session{}, storeErr(err)
	}
	if r.Status == rdb.StatusUserLimit {
		return protocol.Session{}, errPausedLimit
	}
	if r.Status != rdb.StatusOK {
		return protocol.Session{}, statusErr(r.Status)
	}
	return ownView(*r.Session, b.Now(ctx, acct)), nil
}

// pausedLimitError refuses a pause past MaxPausedSessions: user_limit,
// with a sentence that says which limit.
type pausedLimitError struct{}

func (pausedLimitError) Error() string {
	return "the user keeps as many paused sessions as it may (100): end or resume one first"
}

// Unwrap returns ErrUserLimit.
func (pausedLimitError) Unwrap() error { return ErrUserLimit }

var errPausedLimit error = pausedLimitError{}

// Resume resumes the user's own paused session, taking a seat by the seat
// rules with a new fencing token; refused, it stays paused.
func (b *Broker) Resume(ctx context.Context, acct, uid, sid string) (protocol.Grant, error) {
	if !validID(sid) || !validAccount(acct) {
		return protocol.Grant{}, ErrNotFound
	}
	r, err := b.store.Resume(ctx, acct, sid, uid)
	return b.grant(ctx, acct, uid, r, err)
}

// CloseSession ends a session at once because a participant closed it: its own
// user (uid) on the desktop side, with the fencing token of its grant
// (fence), or the remote side (uid and fence ""; the caller checked that it
// is in the session). A token other than the session's current one is
// refused with a *StaleError: a grant replaced it. The remote side of a
// paused session is refused (ErrForbidden): only its user acts on it until
// it resumes. Closing an ended session changes nothing.
func (b *Broker) CloseSession(ctx context.Context, acct, uid, by, sid, fence string) (protocol.Session, error) {
	if !validID(sid) || !validAccount(acct) {
		return protocol.Session{}, ErrNotFound
	}
	// the script refuses another user's session (not_found)
	res, err := b.store.CloseSession(ctx, acct, sid, uid, fence, by, protocol.ReasonClosed)
	if err != nil {
		return protocol.Session{}, storeErr(err)
	}
	if res.Status == rdb.StatusStale || res.Status == rdb.StatusForbidden {
		// a replaced grant; the remote side of a paused session
		return protocol.Session{}, statusErr(res.Status)
	}
	if res.Status != rdb.StatusOK || res.Session == nil {
		return protocol.Session{}, ErrNotFound
	}
	return ownView(*res.Session, b.Now(ctx, acct)), nil
}

// EndSessions is "End Selected Sessions": each session the principal may
// control is ended with the notice (active) or at once (standby, paused).
// The result says per session what happened; a session the principal may
// not see is not_found, one it may see but not control is forbidden.
func (b *Broker) EndSessions(ctx context.Context, p Principal, ids []string) ([]protocol.EndResult, error) {
	return b.endAs(ctx, p, ids, protocol.ReasonTerminated)
}

func (b *Broker) endAs(ctx context.Context, p Principal, ids []string, reason string) ([]protocol.EndResult, error) {
	if len(ids) == 0 {
		return nil, invalid("session_ids", "select at least one session")
	}
	if len(ids) > MaxEnd {
		return nil, invalid("session_ids", "at most 1000 at once")
	}
	out := make([]protocol.EndResult, len(ids))
	recs, err := b.sessionsByID(ctx, p.Account, ids)
	if err != nil {
		return nil, err
	}
	var allowed []string
	idx := map[string][]int{}
	for i, id := range ids {
		out[i].ID = id
		r, ok := recs[id]
		switch {
		case !ok || !p.CanView(r.User, r.State):
			d, _ := ErrorDetail(ErrNotFound)
			out[i].Error = &d
		case !p.CanControl(r.User, r.State):
			d, _ := ErrorDetail(ErrForbidden)
			out[i].Error = &d
		default:
			if len(idx[id]) == 0 {
				allowed = append(allowed, id)
			}
			idx[id] = append(idx[id], i)
		}
	}
	if len(allowed) == 0 {
		return out, nil
	}
	// in calls of EndChunk, one after the other: a call of the account code
	// holds Redis, for every account, while it runs (~0.1 ms a session), and
	// each session ends on its own anyway
	var res []rdb.ItemResult
	for chunk := range slices.Chunk(allowed, EndChunk) {
		r, err := b.store.End(ctx, p.Account, p.UserID, p.Name, reason, chunk)
		if err != nil {
			if len(res) > 0 {
				break // what ended is reported; the rest answer unavailable
			}
			return nil, storeErr(err)
		}
		res = append(res, r...)
	}
	done := map[string]bool{}
	for _, r := range res {
		done[r.ID] = true
	}
	for _, id := range allowed {
		if !done[id] {
			d, _ := ErrorDetail(ErrUnavailable)
			for _, i := range idx[id] {
				out[i].Error = &d
			}
		}
	}
	now := b.Now(ctx, p.Account)
	for _, r := range res {
		for _, i := range idx[r.ID] {
			if r.Status != rdb.StatusOK || r.Session == nil {
				d, _ := ErrorDetail(statusErr(r.Status))
				out[i].Error = &d
				continue
			}
			s := view(*r.Session, now)
			s.CanControl = p.CanControl(r.Session.User, r.Session.State)
			out[i].OK = true
			out[i].Session = &s
		}
	}
	return out, nil
}

func (b *Broker) sessionsByID(ctx context.Context, acct string, ids []string) (map[string]rdb.SessionRec, error) {
	valid := make([]string, 0, len(ids))
	for _, id := range ids {
		if validID(id) {
			valid = append(valid, id)
		}
	}
	recs, err := b.store.SessionsByID(ctx, acct, valid)
	if err != nil {
		return nil, storeErr(err)
	}
	return recs, nil
}

// SessionFilter narrows a session list.
type SessionFilter struct {
	// States to include (all but ended when empty).
	States []string
	UserID string
	// Offset and Limit page the list (Limit 0: 100; at most 1000; Offset
	// at most MaxSessionOffset).
	Offset int
	Limit  int
}

// Sessions lists the sessions the principal may see, newest first, and
// how many there are in all.
func (b *Broker) Sessions(ctx context.Context, p Principal, f SessionFilter) ([]protocol.Session, int, error) {
	if f.Limit == 0 {
		f.Limit = 100
	}
	if f.Limit < 0 || f.Limit > 1000 || f.Offset < 0 {
		return nil, 0, invalid("limit", "limit must be 1 to 1000 and offset not negative")
	}
	if f.Offset > MaxSessionOffset {
		return nil, 0, invalid("offset", "offset must be at most 100000: narrow the list by state or user")
	}
	for _, st := range f.States {
		if !validState(st) {
			return nil, 0, invalid("state", "unknown state "+st)
		}
	}
	want := map[string]bool{}
	for _, st := range f.States {
		want[st] = true
	}
	// only the newest offset+limit are kept while the account is read
	keep := f.Limit + f.Offset
	var kept []rdb.SessionRec
	total := 0
	err := b.store.ScanSessions(ctx, p.Account, SessionScanChunk, func(r rdb.SessionRec) {
		if len(want) > 0 && !want[r.State] || len(want) == 0 && r.State == protocol.StateEnded {
			return
		}
		if f.UserID != "" && r.User != f.UserID {
			return
		}
		if !p.CanView(r.User, r.State) {
			return
		}
		total++
		kept = append(kept, r)
		if len(kept) >= 2*keep+SessionScanChunk {
			sortRecs(kept)
			kept = kept[:keep]
		}
	})
	if err != nil {
		return nil, 0, storeErr(err)
	}
	sortRecs(kept)
	if f.Offset >= len(kept) {
		return []protocol.Session{}, total, nil
	}
	kept = kept[f.Offset:min(f.Offset+f.Limit, len(kept))]
	now := b.Now(ctx, p.Account)
	out := make([]protocol.Session, len(kept))
	for i, r := range kept {
		out[i] = view(r, now)
		out[i].CanControl = p.CanControl(r.User, r.State)
	}
	return out, total, nil
}

// sortRecs orders newest first, ties by id, so pages are stable.
func sortRecs(rs []rdb.SessionRec) {
	slices.SortFunc(rs, func(a, b rdb.SessionRec) int {
		if a.Created != b.Created {
			return cmp.Compare(b.Created, a.Created)
		}
		return strings.Compare(a.ID, b.ID)
	})
}

// Session returns one session the principal may see.
func (b *Broker) Session(ctx context.Context, p Principal, sid string) (protocol.Session, error) {
	if !validID(sid) {
		return protocol.Session{}, ErrNotFound
	}
	r, err := b.store.Session(ctx, p.Account, sid)
	if err != nil {
		return protocol.Session{}, storeErr(err)
	}
	if !p.CanView(r.User, r.State) {
		return protocol.Session{}, ErrNotFound
	}
	s := view(r, b.Now(ctx, p.Account))
	s.CanControl = p.CanControl(r.User, r.State)
	return s, nil
}

// OwnSession returns one of the user's own sessions (the desktop client's
// view, which permissions do not narrow).
func (b *Broker) OwnSession(ctx context.Context, acct, uid, sid string) (protocol.Session, error) {
	if !validID(sid) || !validAccount(acct) {
		return protocol.Session{}, ErrNotFound
	}
	r, err := b.store.Session(ctx, acct, sid)
	if err != nil {
		return protocol.Session{}, storeErr(err)
	}
	if r.User != uid {
		return protocol.Session{}, ErrNotFound
	}
	return ownView(r, b.Now(ctx, acct)), nil
}

func validState(s string) bool {
	switch s {
	case protocol.StateStandby, protocol.StateActive, protocol.StatePaused, protocol.StateTerminating, protocol.StateEnded:
		return true
	}
	return false
}

// checkText refuses empty (when required), oversized, invalid UTF-8 or
// control characters.
func checkText(field, s string, maxLen int, required bool) error {
	if s == "" {
		if required {
			return invalid(field, "is required")
		}
		return nil
	}
	if len(s) > maxLen {
		return invalid(field, "is too long")
	}
	if !utf8.ValidString(s) {
		return invalid(field, "is not UTF-8")
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return invalid(field, "has control characters")
		}
	}
	return nil
}

// validID says whether s can be an id seatbroker made (a UUID).
func validID(s string) bool {
	_, err := uuid.Parse(s)
	return err == nil && len(s) == 36
}

// validAccount says whether s can be an account id: 1 to 63 of a-z, 0-9
// and -, starting with a letter or digit.
func validAccount(s string) bool {
	if len(s) == 0 || len(s) > 63 || s[0] == '-' {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
