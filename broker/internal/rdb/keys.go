package rdb

import "strings"

// DefaultPrefix is the key prefix when none is configured. The version in
// it lets a later schema live beside this one during a rolling upgrade.
const DefaultPrefix = "sb:v3"

// Keys names every Redis key seatbroker uses. Keys of one account share
// the hash tag {account id}, so every account script touches one slot in
// Redis Cluster too.
type Keys struct {
	prefix string
}

// NewKeys returns the key names under prefix (DefaultPrefix when empty).
func NewKeys(prefix string) Keys {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return Keys{prefix: strings.TrimSuffix(prefix, ":")}
}

// Prefix returns the configured prefix.
func (k Keys) Prefix() string { return k.prefix }

func (k Keys) tag(acct string) string { return k.prefix + ":{" + acct + "}:" }

// AccountHash is a hash: the settings and counters of an account.
func (k Keys) AccountHash(acct string) string { return k.tag(acct) + "acct" }

// Users is a hash: user id -> user JSON.
func (k Keys) Users(acct string) string { return k.tag(acct) + "users" }

// Sessions is a hash: session id -> session JSON.
func (k Keys) Sessions(acct string) string { return k.tag(acct) + "sess" }

// Seats is a hash: seat key -> the seat ("P"/"U", its user and the ids
// of the sessions that hold it, space-separated: lib.lua), and "@" user id
// -> the seat keys the user holds, newline-separated (see SeatsFieldUser,
// ParseUserSeats), and "~" user id -> the user's paused sessions,
// space-separated (see SeatsFieldPaused).
func (k Keys) Seats(acct string) string { return k.tag(acct) + "seats" }

// SeatsFieldUser says whose seat set a field of the seats hash is, if it
// is one. No seat key starts with "@": it starts with a user or session id.
func SeatsFieldUser(field string) (string, bool) { return strings.CutPrefix(field, "@") }

// SeatsFieldPaused says whose paused sessions a field of the seats hash
// lists, if it is such a list. No seat key starts with "~".
func SeatsFieldPaused(field string) (string, bool) { return strings.CutPrefix(field, "~") }

// PPUQueue is a sorted set: seat keys on PPU by when they began waiting.
func (k Keys) PPUQueue(acct string) string { return k.tag(acct) + "ppuq" }

// Due is a sorted set: session id -> when its next timer fires (ms); and
// a member of 65 "~..." bytes (timers.lua, RET_MARK), due when the head
// of the Retained list is.
func (k Keys) Due(acct string) string { return k.tag(acct) + "due" }

// parkedScore is where the account code parks its retention marker in an
// account's due set while nothing waits for retention (timers.lua,
// PARKED: it keeps the set a skiplist): a first timer at it or later is
// no timer.
const parkedScore = 9007199254740991

// Retained is a list: "<ms> <session id>" for each ended session, to be
// removed at that time (its retention), in the order they ended.
func (k Keys) Retained(acct string) string { return k.tag(acct) + "ret" }

// Ledger is a list: the PPU ledger entries (JSON), oldest first.
func (k Keys) Ledger(acct string) string { return k.tag(acct) + "ledger" }

// Billed is a hash: idempotency key -> ledger index.
func (k Keys) Billed(acct string) string { return k.tag(acct) + "billed" }

// Channel is the pub/sub channel of an account's events.
func (k Keys) Channel(acct string) string { return k.tag(acct) + "events" }

// ChannelAccount returns the account whose channel ch is.
func (k Keys) ChannelAccount(ch string) (string, bool) {
	rest, ok := strings.CutPrefix(ch, k.prefix+":{")
	if !ok {
		return "", false
	}
	return strings.CutSuffix(rest, "}:events")
}

// Probe is the pub/sub channel on which a node sends itself probes, to
// find out that its subscription still delivers (outside every account).
func (k Keys) Probe(node string) string { return k.prefix + ":probe:" + node }

// Names is a hash: lower-cased user name -> user id.
func (k Keys) Names(acct string) string { return k.tag(acct) + "names" }

// Secrets is a hash: user id -> password hash. Never returned by the API.
func (k Keys) Secrets(acct string) string { return k.tag(acct) + "secrets" }

// Tokens is a hash: token hash -> token JSON, the account's live tokens
// (to list and revoke them).
func (k Keys) Tokens(acct string) string { return k.tag(acct) + "tokens" }

// TokenExpiry is a sorted set: token hash -> when it expires (ms), so
// that filing a token drops the account's expired ones (token_put.lua).
func (k Keys) TokenExpiry(acct string) string { return k.tag(acct) + "tokexp" }

// UserTokens is a sorted set: token hash -> when it expires (ms), for one
// user's tokens, to hold a user to MaxUserTokens (token_put.lua). It
// expires with the user's last token.
func (k Keys) UserTokens(acct, uid string) string { return k.tag(acct) + "utok:" + uid }

// account returns the KEYS every account script takes, in the order
// lib.lua names them.
func (k Keys) account(acct string) []string {
	t := k.tag(acct)
	return []string{t + "acct", t + "users", t + "sess", t + "seats",
		t + "ppuq", t + "due", t + "ledger", t + "billed", t + "events", t + "names", t + "ret"}
}

// DueIndex is a sorted set outside any account: account id -> its next
// timer (ms). Reapers on every node read it in time order.
func (k Keys) DueIndex() string { return k.prefix + ":due" }

// SweepTurn is a string with a TTL a little under the sweep interval: the
// node that set it sweeps this turn, and the others skip theirs.
func (k Keys) SweepTurn() string { return k.prefix + ":sweep" }

// SweepCursor is a string: where the next sweep goes on in the accounts
// set (an SSCAN cursor; "0" or none: from the start).
func (k Keys) SweepCursor() string { return k.prefix + ":sweep:cursor" }

// Accounts is a set of every account id.
func (k Keys) Accounts() string { return k.prefix + ":accounts" }

// Code is a string: a live session code -> "account id/session id", with
// the standby time as its TTL.
func (k Keys) Code(code string) string { return k.prefix + ":code:" + code }

// Rejoin is a string: a remote side's rejoin secret's hash -> "acct/sid",
// with a TTL; it lets a remote side that lost its connection come back.
func (k Keys) Rejoin(hash string) string { return k.prefix + ":rejoin:" + hash }

// Token is a string: a bearer token's hash -> token JSON, with the
// token's expiry as TTL.
func (k Keys) Token(hash string) string { return k.prefix + ":token:" + hash }

// Rate is a string: the GCRA state of one rate limit.
func (k Keys) Rate(name string) string { return k.prefix + ":rate:" + name }
