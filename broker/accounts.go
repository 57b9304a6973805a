package broker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/seatbroker/seatbroker/broker/internal/rdb"
	"github.com/seatbroker/seatbroker/broker/protocol"
)

// Limits of account settings.
const (
	MaxSeats   = 1_000_000
	MaxTopUp   = 10_000_000 // minutes in one top-up
	MaxName    = 100
	MaxNotice  = 10 * time.Minute
	MaxStandby = 24 * time.Hour
	MaxPaused  = 7 * 24 * time.Hour
	// LedgerChunk is how many ledger entries one Redis command of a
	// reconciliation reads.
	LedgerChunk  = 1000
	minDurations = time.Second
)

// AccountSpec creates an account.
type AccountSpec struct {
	// ID: 1 to 63 of a-z, 0-9 and -.
	ID    string
	Name  string
	Seats int64
	// Mode: user_device (default), user or session.
	Mode       string
	PPUEnabled bool
	// OwnerName names the owner user, created with the account.
	OwnerName string
}

// CreateAccount creates an account and its owner. New accounts default to
// view domain, control own (SPEC.md), and promotion on.
func (b *Broker) CreateAccount(ctx context.Context, spec AccountSpec) (protocol.Settings, protocol.User, error) {
	if !validAccount(spec.ID) {
		return protocol.Settings{}, protocol.User{}, invalid("id", "use 1 to 63 of a-z, 0-9 and -")
	}
	if spec.Mode == "" {
		spec.Mode = protocol.ModeUserDevice
	}
	if spec.Name == "" {
		spec.Name = spec.ID
	}
	if err := checkText("name", spec.Name, MaxName, true); err != nil {
		return protocol.Settings{}, protocol.User{}, err
	}
	if err := checkText("owner_name", spec.OwnerName, MaxName, true); err != nil {
		return protocol.Settings{}, protocol.User{}, err
	}
	if spec.Seats < 0 || spec.Seats > MaxSeats {
		return protocol.Settings{}, protocol.User{}, invalid("seats", "must be 0 to 1000000")
	}
	if !validMode(spec.Mode) {
		return protocol.Settings{}, protocol.User{}, invalid("mode", "must be user_device, user or session")
	}
	fields := map[string]string{
		"name": spec.Name, "seats": strconv.FormatInt(spec.Seats, 10), "mode": spec.Mode,
		"ppu": boolField(spec.PPUEnabled), "promote": "1",
		"view": protocol.ScopeDomain, "control": protocol.ScopeOwn,
	}
	owner := rdb.UserRec{ID: uuid.NewString(), Name: spec.OwnerName, Role: protocol.RoleOwner,
		Status: protocol.UserActive, Created: b.Now(ctx, spec.ID).UnixMilli()}
	if err := b.store.CreateAccount(ctx, spec.ID, fields, owner); err != nil {
		return protocol.Settings{}, protocol.User{}, storeErr(err)
	}
	set, err := b.Settings(ctx, spec.ID)
	if err != nil {
		return protocol.Settings{}, protocol.User{}, err
	}
	return set, userView(owner, set.View, set.Control, 0), nil
}

func boolField(v bool) string {
	if v {
		return "1"
	}
	return "0"
}

func validMode(m string) bool {
	return m == protocol.ModeUserDevice || m == protocol.ModeUser || m == protocol.ModeSession
}

func (b *Broker) account(ctx context.Context, acct string) (map[string]string, error) {
	if !validAccount(acct) {
		return nil, ErrNotFound
	}
	m, err := b.store.Account(ctx, acct)
	if err != nil {
		return nil, storeErr(err)
	}
	return m, nil
}

func num(m map[string]string, f string) int64 {
	n, _ := strconv.ParseInt(m[f], 10, 64)
	return n
}

func (b *Broker) durSec(m map[string]string, f string, def time.Duration) int64 {
	if ms := num(m, f+"_ms"); ms > 0 {
		return ms / 1000
	}
	return int64(def / time.Second)
}

func settingsOf(b *Broker, m map[string]string) protocol.Settings {
	return protocol.Settings{
		Name: m["name"], Seats: num(m, "seats"), Mode: m["mode"], PPUEnabled: m["ppu"] == "1",
		Promote: m["promote"] != "0", View: m["view"], Control: m["control"],
		NoticeSec:  b.durSec(m, "notice", b.cfg.Notice),
		StandbySec: b.durSec(m, "standby", b.cfg.Standby),
		PausedSec:  b.durSec(m, "paused", b.cfg.Paused),
	}
}

// Settings returns an account's settings.
func (b *Broker) Settings(ctx context.Context, acct string) (protocol.Settings, error) {
	m, err := b.account(ctx, acct)
	if err != nil {
		return protocol.Settings{}, err
	}
	return settingsOf(b, m), nil
}

// SettingsPatch changes some settings; nil fields stay as they are.
type SettingsPatch struct {
	Name       *string `json:"name,omitempty"`
	Seats      *int64  `json:"seats,omitempty"`
	Mode       *string `json:"mode,omitempty"`
	PPUEnabled *bool   `json:"ppu_enabled,omitempty"`
	Promote    *bool   `json:"promote,omitempty"`
	View       *string `json:"view,omitempty"`
	Control    *string `json:"control,omitempty"`
	NoticeSec  *int64  `json:"notice_sec,omitempty"`
	StandbySec *int64  `json:"standby_sec,omitempty"`
	PausedSec  *int64  `json:"paused_sec,omitempty"`
}

// UpdateSettings changes an account's settings (owner and admins).
// Lowering seats revokes nothing; raising them promotes waiting PPU keys.
// The counting mode changes only while no seat is held.
func (b *Broker) UpdateSettings(ctx context.Context, p Principal, patch SettingsPatch) (protocol.Settings, error) {
	if !p.IsAdmin() {
		return protocol.Settings{}, ErrForbidden
	}
	cur, err := b.Settings(ctx, p.Account)
	if err != nil {
		return protocol.Settings{}, err
	}
	f := map[string]string{}
	if patch.Name != nil {
		if err := checkText("name", *patch.Name, MaxName, true); err != nil {
			return protocol.Settings{}, err
		}
		f["name"] = *patch.Name
	}
	if patch.Seats != nil {
		if *patch.Seats < 0 || *patch.Seats > MaxSeats {
			return protocol.Settings{}, invalid("seats", "must be 0 to 1000000")
		}
		f["seats"] = strconv.FormatInt(*patch.Seats, 10)
	}
	if patch.Mode != nil {
		if !validMode(*patch.Mode) {
			return protocol.Settings{}, invalid("mode", "must be user_device, user or session")
		}
		f["mode"] = *patch.Mode
	}
	if patch.PPUEnabled != nil {
		f["ppu"] = boolField(*patch.PPUEnabled)
	}
	if patch.Promote != nil {
		f["promote"] = boolField(*patch.Promote)
	}
	view, control := cur.View, cur.Control
	if patch.View != nil {
		view = *patch.View
	}
	if patch.Control != nil {
		control = *patch.Control
	}
	if patch.View != nil || patch.Control != nil {
		if err := CheckScopes(view, control); err != nil {
			return protocol.Settings{}, err
		}
		if err := b.checkOverrides(ctx, p.Account, view, control); err != nil {
			return protocol.Settings{}, err
		}
		f["view"], f["control"] = view, control
	}
	for _, d := range []struct {
		v     *int64
		field string
		max   time.Duration
	}{{patch.NoticeSec, "notice", MaxNotice}, {patch.StandbySec, "standby", MaxStandby}, {patch.PausedSec, "paused", MaxPaused}} {
		if d.v == nil {
			continue
		}
		v := time.Duration(*d.v) * time.Second
		if v < minDurations || v > d.max {
			return protocol.Settings{}, invalid(d.field+"_sec", "out of range")
		}
		f[d.field+"_ms"] = strconv.FormatInt(v.Milliseconds(), 10)
	}
	if len(f) == 0 {
		return cur, nil
	}
	m, err := b.store.UpdateSettings(ctx, p.Account, f)
	if err != nil {
		var se *rdb.StatusError
		if asStatus(err, &se) && se.Status == rdb.StatusBadState && se.Field == "mode" {
			return protocol.Settings{}, invalid("mode", "the counting mode can change only while no license is in use")
		}
		return protocol.Settings{}, storeErr(err)
	}
	return settingsOf(b, m), nil
}

// checkOverrides refuses new account defaults under which a user's own
// override would give control wider than view (as putUser refuses such an
// override under the current defaults): the user's override is changed
// first. (A user change racing this check can still meet the new defaults;
// Effective narrows control to view whatever is stored.)
func (b *Broker) checkOverrides(ctx context.Context, acct, view, control string) error {
	us, err := b.store.Users(ctx, acct)
	if err != nil {
		return storeErr(err)
	}
	for _, u := range us {
		uv, uc := u.View, u.Control
		if uv == "" && uc == "" {
			continue
		}
		if uv == "" {
			uv = view
		}
		if uc == "" {
			uc = control
		}
		if scopeRank(uc) > scopeRank(uv) {
			return invalid("control", fmt.Sprintf("control cannot be wider than view: with these defaults user %q would have view %s and control %s; change its override first", u.Name, uv, uc))
		}
	}
	return nil
}

// Overview returns the License tab of the principal's account.
func (b *Broker) Overview(ctx context.Context, p Principal) (protocol.Overview, error) {
	return b.OverviewOf(ctx, p.Account)
}

// OverviewOf returns the License tab of an account.
func (b *Broker) OverviewOf(ctx context.Context, acct string) (protocol.Overview, error) {
	if !validAccount(acct) {
		return protocol.Overview{}, ErrNotFound
	}
	m, ppuKeys, err := b.store.AccountWithPPUKeys(ctx, acct)
	if err != nil {
		return protocol.Overview{}, storeErr(err)
	}
	seats, used := num(m, "seats"), num(m, "used")
	return protocol.Overview{
		Account: acct, Name: m["name"], Seats: seats, InUse: used,
		Free: max(0, seats-used), Over: max(0, used-seats),
		PPUEnabled: m["ppu"] == "1", PPUBalance: num(m, "balance"), PPUSessions: num(m, "ppu_sess"),
		PPUKeys: ppuKeys,
	}, nil
}

// PrincipalFor loads a user of an account as a principal, with its
// effective permissions. A blocked user is refused.
func (b *Broker) PrincipalFor(ctx context.Context, acct, uid string) (Principal, error) {
	if !validAccount(acct) || !validID(uid) {
		return Principal{}, ErrNotFound
	}
	m, u, err := b.store.AccountWithUser(ctx, acct, uid)
	if err != nil {
		return Principal{}, storeErr(err)
	}
	if u.Status != protocol.UserActive {
		return Principal{}, ErrUserBlocked
	}
	v, c := Effective(u.Role, u.View, u.Control, m["view"], m["control"])
	return Principal{Account: acct, UserID: u.ID, Name: u.Name, Role: u.Role, View: v, Control: c}, nil
}

// UserSpec adds a user.
type UserSpec struct {
	Name     string
	Role     string // admin or member (default member)
	MaxSeats *int
	View     string // "" follows the account
	Control  string
}

// AddUser adds a user to the principal's account (owner and admins).
func (b *Broker) AddUser(ctx context.Context, p Principal, spec UserSpec) (protocol.User, error) {
	if !p.IsAdmin() {
		return protocol.User{}, ErrForbidden
	}
	if spec.Role == "" {
		spec.Role = protocol.RoleMember
	}
	if spec.Role != protocol.RoleAdmin && spec.Role != protocol.RoleMember {
		// an account has one owner, made with the account
		return protocol.User{}, invalid("role", "must be admin or member")
	}
	u := rdb.UserRec{ID: uuid.NewString(), Name: spec.Name, Role: spec.Role, Status: protocol.UserActive,
		MaxSeats: spec.MaxSeats, View: spec.View, Control: spec.Control, Created: b.Now(ctx, p.Account).UnixMilli()}
	if err := checkUser(u); err != nil {
		return protocol.User{}, err
	}
	return b.putUser(ctx, p.Account, u, true)
}

func checkUser(u rdb.UserRec) error {
	if err := checkText("name", u.Name, MaxName, true); err != nil {
		return err
	}
	if u.Role != protocol.RoleAdmin && u.Role != protocol.RoleMember && u.Role != protocol.RoleOwner {
		return invalid("role", "must be admin or member")
	}
	if u.MaxSeats != nil && (*u.MaxSeats < 0 || *u.MaxSeats > MaxSeats) {
		return invalid("max_seats", "must be 0 to 1000000")
	}
	if u.View != "" && !validScope(u.View) {
		return invalid("view", "must be none, own or domain")
	}
	if u.Control != "" && !validScope(u.Control) {
		return invalid("control", "must be none, own or domain")
	}
	if u.View != "" && u.Control != "" && scopeRank(u.Control) > scopeRank(u.View) {
		return invalid("control", "control cannot be wider than view")
	}
	return nil
}

func (b *Broker) putUser(ctx context.Context, acct string, u rdb.UserRec, create bool) (protocol.User, error) {
	set, err := b.Settings(ctx, acct)
	if err != nil {
		return protocol.User{}, err
	}
	if u.View != "" && u.Control == "" && scopeRank(set.Control) > scopeRank(u.View) ||
		u.Control != "" && u.View == "" && scopeRank(u.Control) > scopeRank(set.View) {
		return protocol.User{}, invalid("control", "control cannot be wider than view")
	}
	out, err := b.store.PutUser(ctx, acct, u, create, b.cfg.MaxUsers)
	var se *rdb.StatusError
	if errors.As(err, &se) && se.Status == rdb.StatusBadState && se.Field == "users" {
		return protocol.User{}, invalid("users", fmt.Sprintf("an account has at most %d users", b.cfg.MaxUsers))
	}
	if err != nil {
		return protocol.User{}, storeErr(err)
	}
	if create {
		// a new user holds nothing (and a failed read after the write would
		// make a retried POST add the user twice)
		return userView(out, set.View, set.Control, 0), nil
	}
	return b.userOut(ctx, acct, out, set)
}

// userOut is a user as the API shows it, with the seats it holds now.
func (b *Broker) userOut(ctx context.Context, acct string, u rdb.UserRec, set protocol.Settings) (protocol.User, error) {
	held, err := b.store.UserSeatCount(ctx, acct, u.ID)
	if err != nil {
		return protocol.User{}, storeErr(err)
	}
	return userView(u, set.View, set.Control, held), nil
}

// UserPatch changes a user; nil fields stay. ClearMaxSeats removes the
// limit; View/Control "" (set) returns to the account default.
type UserPatch struct {
	Name          *string
	Role          *string
	MaxSeats      *int
	ClearMaxSeats bool
	View          *string
	Control       *string
}

// UpdateUser changes a user of the principal's account (owner and
// admins; the owner only by itself). The owner's role does not change;
// lowering max_seats revokes nothing.
func (b *Broker) UpdateUser(ctx context.Context, p Principal, uid string, patch UserPatch) (protocol.User, error) {
	u, err := b.adminTarget(ctx, p, uid)
	if err != nil {
		return protocol.User{}, err
	}
	if u.Role == protocol.RoleOwner && p.Role != protocol.RoleOwner {
		// an admin may not rename the owner or cap its seats: only the
		// owner changes the owner (as its password)
		return protocol.User{}, ErrForbidden
	}
	if patch.Name != nil {
		u.Name = *patch.Name
	}
	if patch.Role != nil {
		if u.Role == protocol.RoleOwner || *patch.Role == protocol.RoleOwner {
			return protocol.User{}, invalid("role", "the owner's role does not change")
		}
		u.Role = *patch.Role
	}
	if patch.ClearMaxSeats {
		u.MaxSeats = nil
	} else if patch.MaxSeats != nil {
		u.MaxSeats = patch.MaxSeats
	}
	if patch.View != nil {
		u.View = *patch.View
	}
	if patch.Control != nil {
		u.Control = *patch.Control
	}
	if err := checkUser(u); err != nil {
		return protocol.User{}, err
	}
	return b.putUser(ctx, p.Account, u, false)
}

// Users lists the users of the principal's account (owner and admins).
func (b *Broker) Users(ctx context.Context, p Principal) ([]protocol.User, error) {
	if !p.IsAdmin() {
		return nil, ErrForbidden
	}
	set, err := b.Settings(ctx, p.Account)
	if err != nil {
		return nil, err
	}
	us, err := b.store.Users(ctx, p.Account)
	if err != nil {
		return nil, storeErr(err)
	}
	uids := make([]string, len(us))
	for i, u := range us {
		uids[i] = u.ID
	}
	held, err := b.store.UserSeatCounts(ctx, p.Account, uids)
	if err != nil {
		return nil, storeErr(err)
	}
	out := make([]protocol.User, 0, len(us))
	for _, u := range us {
		out = append(out, userView(u, set.View, set.Control, held[u.ID]))
	}
	sortUsers(out)
	return out, nil
}

// User returns one user of an account, to the owner, admins, or itself.
func (b *Broker) User(ctx context.Context, p Principal, uid string) (protocol.User, error) {
	if !p.IsAdmin() && uid != p.UserID {
		return protocol.User{}, ErrNotFound
	}
	if !validID(uid) {
		return protocol.User{}, ErrNotFound
	}
	set, err := b.Settings(ctx, p.Account)
	if err != nil {
		return protocol.User{}, err
	}
	u, err := b.store.User(ctx, p.Account, uid)
	if err != nil {
		return protocol.User{}, storeErr(err)
	}
	return b.userOut(ctx, p.Account, u, set)
}

// adminTarget reads the user an owner or admin acts on. The user is looked
// up first, so a malformed or unknown id, or another account's, answers
// not_found to anyone (docs/api.md); a member naming a user of its own
// account is refused.
func (b *Broker) adminTarget(ctx context.Context, p Principal, uid string) (rdb.UserRec, error) {
	if !validID(uid) {
		return rdb.UserRec{}, ErrNotFound
	}
	u, err := b.store.User(ctx, p.Account, uid)
	if err != nil {
		return rdb.UserRec{}, storeErr(err)
	}
	if !p.IsAdmin() {
		return rdb.UserRec{}, ErrForbidden
	}
	return u, nil
}

// BlockUser blocks or unblocks a user (owner and admins). Blocking ends
// all of its sessions with the notice (user_blocked); the owner cannot be
// blocked, nor can one block oneself.
func (b *Broker) BlockUser(ctx context.Context, p Principal, uid string, block bool) (protocol.User, error) {
	u, err := b.adminTarget(ctx, p, uid)
	if err != nil {
		return protocol.User{}, err
	}
	if block && (u.Role == protocol.RoleOwner || uid == p.UserID) {
		return protocol.User{}, invalid("user", "the owner, and oneself, cannot be blocked")
	}
	out, err := b.store.Block(ctx, p.Account, uid, block, p.Name)
	if err != nil {
		return protocol.User{}, storeErr(err)
	}
	set, err := b.Settings(ctx, p.Account)
	if err != nil {
		return protocol.User{}, err
	}
	return b.userOut(ctx, p.Account, out, set)
}

// TopUp adds PPU minutes (owner and admins). key makes a retried top-up
// count once; an empty key makes a new one.
func (b *Broker) TopUp(ctx context.Context, p Principal, minutes int64, key, note string) (int64, error) {
	if !p.IsAdmin() {
		return 0, ErrForbidden
	}
	if minutes <= 0 || minutes > MaxTopUp {
		return 0, invalid("minutes", "must be 1 to 10000000")
	}
	if key == "" {
		key = uuid.NewString()
	}
	if err := checkText("key", key, 100, true); err != nil {
		return 0, err
	}
	if err := checkText("note", note, 200, false); err != nil {
		return 0, err
	}
	bal, _, err := b.store.TopUp(ctx, p.Account, minutes, key, p.Name, note)
	if err != nil {
		return 0, storeErr(err)
	}
	return bal, nil
}

// Ledger returns PPU ledger entries, oldest first, and their total count
// (owner and admins).
func (b *Broker) Ledger(ctx context.Context, p Principal, offset, limit int64) ([]protocol.LedgerEntry, int64, error) {
	if !p.IsAdmin() {
		return nil, 0, ErrForbidden
	}
	if limit == 0 {
		limit = 100
	}
	if offset < 0 || limit < 0 || limit > 1000 {
		return nil, 0, invalid("limit", "limit must be 1 to 1000 and offset not negative")
	}
	es, n, err := b.store.Ledger(ctx, p.Account, offset, limit)
	if err != nil {
		return nil, 0, storeErr(err)
	}
	out := make([]protocol.LedgerEntry, len(es))
	for i, e := range es {
		out[i] = ledgerView(e)
	}
	return out, n, nil
}

func ledgerView(e rdb.LedgerEntry) protocol.LedgerEntry {
	return protocol.LedgerEntry{Kind: e.Kind, SessionID: e.Session, UserID: e.User, Minute: e.Minute,
		Delta: e.Delta, Balance: e.Balance, At: msTime(e.At), By: e.By, Note: e.Note}
}

// SessionLedger returns the ledger entries of one session the principal
// may see: what that session was billed.
func (b *Broker) SessionLedger(ctx context.Context, p Principal, sid string) ([]protocol.LedgerEntry, error) {
	s, err := b.Session(ctx, p, sid)
	if err != nil {
		return nil, err
	}
	es, err := b.store.SessionLedger(ctx, p.Account, sid, s.PPUMinutes)
	if err != nil {
		return nil, storeErr(err)
	}
	out := make([]protocol.LedgerEntry, 0, len(es))
	for _, e := range es {
		out = append(out, ledgerView(e))
	}
	return out, nil
}

// Reconciliation is the ledger checked against the balance.
type Reconciliation struct {
	Balance   int64 `json:"balance"`
	LedgerSum int64 `json:"ledger_sum"`
	Entries   int64 `json:"entries"`
	Minutes   int64 `json:"minutes_billed"`
	TopUps    int64 `json:"topped_up"`
	// Duplicates counts (session, minute) pairs billed more than once:
	// always 0 unless the store was damaged.
	Duplicates int  `json:"duplicates"`
	OK         bool `json:"ok"`
}

// Reconcile adds up the whole PPU ledger and compares it with the balance
// (owner and admins). After a Redis failover that lost writes, a mismatch
// says the balance and ledger disagree; see README, "Minutes are money".
func (b *Broker) Reconcile(ctx context.Context, p Principal) (Reconciliation, error) {
	if !p.IsAdmin() {
		return Reconciliation{}, ErrForbidden
	}
	if !validAccount(p.Account) {
		return Reconciliation{}, ErrNotFound
	}
	// one state: a minute billed between two reads would be a mismatch
	m, n, err := b.store.AccountWithLedgerLen(ctx, p.Account)
	if err != nil {
		return Reconciliation{}, storeErr(err)
	}
	r := Reconciliation{Balance: num(m, "balance"), Entries: n}
	// the first n entries, a part at a time: the ledger has an entry per
	// billed minute and only grows, so reading it whole would stop Redis
	// and fill the node. A minute billed twice is an entry whose
	// idempotency key names another entry (each key names the last entry
	// filed with it).
	for from := int64(0); from < n; from += LedgerChunk {
		es, _, err := b.store.Ledger(ctx, p.Account, from, min(LedgerChunk, n-from))
		if err != nil {
			return Reconciliation{}, storeErr(err)
		}
		var keys []string
		var at []int64
		for i, e := range es {
			r.LedgerSum += e.Delta
			switch e.Kind {
			case "minute":
				r.Minutes++
				keys = append(keys, e.Session+":"+strconv.FormatInt(e.Minute, 10))
				at = append(at, from+int64(i))
			case "topup":
				r.TopUps += e.Delta
			}
		}
		idx, err := b.store.BilledIndexes(ctx, p.Account, keys)
		if err != nil {
			return Reconciliation{}, storeErr(err)
		}
		for i, x := range idx {
			if x != at[i] {
				r.Duplicates++
			}
		}
	}
	r.OK = r.LedgerSum == r.Balance && r.Duplicates == 0
	return r, nil
}
