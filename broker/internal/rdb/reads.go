package rdb

import (
	"context"
	"errors"
	"fmt"
	json "github.com/goccy/go-json"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Account returns the account hash, or StatusNotFound.
func (s *Store) Account(ctx context.Context, acct string) (map[string]string, error) {
	m, err := s.client.HGetAll(ctx, s.keys.AccountHash(acct)).Result()
	if err != nil {
		return nil, err
	}
	if len(m) == 0 {
		return nil, statusErr(StatusNotFound)
	}
	return m, nil
}

// AccountWithUser reads an account hash and one of its users in one round
// trip (every authenticated request needs both). StatusNotFound when
// either is missing.
func (s *Store) AccountWithUser(ctx context.Context, acct, uid string) (map[string]string, UserRec, error) {
	pipe := s.client.Pipeline()
	ac := pipe.HGetAll(ctx, s.keys.AccountHash(acct))
	uc := pipe.HGet(ctx, s.keys.Users(acct), uid)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, UserRec{}, err
	}
	if len(ac.Val()) == 0 {
		return nil, UserRec{}, statusErr(StatusNotFound)
	}
	raw, err := found(uc.Result())
	if err != nil {
		return nil, UserRec{}, err
	}
	u, err := decodeJSON[UserRec](raw)
	return ac.Val(), u, err
}

// AccountWithPPUKeys reads an account hash and how many seat keys run on
// PPU, in one round trip (the License tab).
func (s *Store) AccountWithPPUKeys(ctx context.Context, acct string) (map[string]string, int64, error) {
	pipe := s.client.Pipeline()
	ac := pipe.HGetAll(ctx, s.keys.AccountHash(acct))
	zc := pipe.ZCard(ctx, s.keys.PPUQueue(acct))
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, 0, err
	}
	if len(ac.Val()) == 0 {
		return nil, 0, statusErr(StatusNotFound)
	}
	return ac.Val(), zc.Val(), nil
}

// AccountWithLedgerLen reads an account hash and its PPU ledger's length
// as one state (MULTI: a minute billed or a top-up between two reads would
// make the balance and the ledger disagree). The ledger only grows at its
// end, in the same call that changes the balance, so its first n entries,
// read later a part at a time, are the ledger of that balance.
// StatusNotFound when the account is missing.
func (s *Store) AccountWithLedgerLen(ctx context.Context, acct string) (map[string]string, int64, error) {
	var ac *redis.MapStringStringCmd
	var ll *redis.IntCmd
	_, err := s.client.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
		ac = pipe.HGetAll(ctx, s.keys.AccountHash(acct))
		ll = pipe.LLen(ctx, s.keys.Ledger(acct))
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	if len(ac.Val()) == 0 {
		return nil, 0, statusErr(StatusNotFound)
	}
	return ac.Val(), ll.Val(), nil
}

// decodeJSON decodes one stored record.
func decodeJSON[T any](raw string) (T, error) {
	var v T
	if err := json.Unmarshal([]byte(raw), &v); err != nil {
		return v, fmt.Errorf("%w: %w", ErrUnexpectedReply, err)
	}
	return v, nil
}

// decodeAll decodes stored records.
func decodeAll[T any](vals []string) ([]T, error) {
	out := make([]T, 0, len(vals))
	for _, raw := range vals {
		v, err := decodeJSON[T](raw)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// found turns a read's redis.Nil into StatusNotFound.
func found[T any](v T, err error) (T, error) {
	if errors.Is(err, redis.Nil) {
		return v, statusErr(StatusNotFound)
	}
	return v, err
}

// hgetJSON reads one record from a hash, or StatusNotFound.
func hgetJSON[T any](ctx context.Context, c redis.UniversalClient, key, field string) (T, error) {
	raw, err := found(c.HGet(ctx, key, field).Result())
	if err != nil {
		var zero T
		return zero, err
	}
	return decodeJSON[T](raw)
}

// User returns one user, or StatusNotFound.
func (s *Store) User(ctx context.Context, acct, uid string) (UserRec, error) {
	return hgetJSON[UserRec](ctx, s.client, s.keys.Users(acct), uid)
}

// UserScanChunk is how many users a call of Users reads at a time.
const UserScanChunk = 500

// Users returns every user of an account, read UserScanChunk at a time
// (HSCAN): an account may have up to -max-users (50,000), and one HVALS of
// them all held Redis for ~15 ms, during which it served nobody. HSCAN
// may return a user twice; each is kept once.
func (s *Store) Users(ctx context.Context, acct string) ([]UserRec, error) {
	var out []UserRec
	err := scanRecords(ctx, s.client, s.keys.Users(acct), UserScanChunk, func(u UserRec) { out = append(out, u) })
	return out, err
}

// Session returns one session, or StatusNotFound.
func (s *Store) Session(ctx context.Context, acct, sid string) (SessionRec, error) {
	return hgetJSON[SessionRec](ctx, s.client, s.keys.Sessions(acct), sid)
}

// ScanSessions calls fn with every session of an account, ended ones
// included until their retention runs out, reading about chunk at a time
// (HSCAN): no one command reads the whole account, which would stop Redis
// for everyone while it ran, and only a chunk of records is held at once.
// A session that changes during the scan is seen as it was at some moment
// of it; one that Redis returns twice (it may, while the hash grows) is
// passed once.
func (s *Store) ScanSessions(ctx context.Context, acct string, chunk int, fn func(SessionRec)) error {
	return scanRecords(ctx, s.client, s.keys.Sessions(acct), chunk, fn)
}

// scanRecords calls fn with every record of a hash of JSON records, read
// about chunk at a time (HSCAN). HSCAN may return a field twice (while the
// hash grows); each record is passed once.
func scanRecords[T any](ctx context.Context, c redis.UniversalClient, key string, chunk int, fn func(T)) error {
	seen := map[string]struct{}{}
	var cursor uint64
	for {
		kv, next, err := c.HScan(ctx, key, cursor, "", int64(chunk)).Result()
		if err != nil {
			return err
		}
		for i := 0; i+1 < len(kv); i += 2 {
			if _, dup := seen[kv[i]]; dup {
				continue
			}
			seen[kv[i]] = struct{}{}
			r, err := decodeJSON[T](kv[i+1])
			if err != nil {
				return err
			}
			fn(r)
		}
		if next == 0 {
			return nil
		}
		cursor = next
	}
}

// SessionsByID returns the sessions of ids that exist.
func (s *Store) SessionsByID(ctx context.Context, acct string, ids []string) (map[string]SessionRec, error) {
	out := make(map[string]SessionRec, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	vals, err := s.client.HMGet(ctx, s.keys.Sessions(acct), ids...).Result()
	if err != nil {
		return nil, err
	}
	for _, v := range vals {
		raw, ok := v.(string)
		if !ok {
			continue // absent
		}
		r, err := decodeJSON[SessionRec](raw)
		if err != nil {
			return nil, err
		}
		out[r.ID] = r
	}
	return out, nil
}

// SeatHolder is one held seat as the store keeps it.
type SeatHolder struct {
	Key  string
	Kind string
	User string
	SIDs []string
}

// ParseSeat reads the seat of key from the seats hash: "P" (prepaid) or
// "U" (PPU), its user and its sessions, separated by spaces.
func ParseSeat(key, raw string) (SeatHolder, error) {
	f := strings.Split(raw, " ")
	if len(f) < 3 || (f[0] != "P" && f[0] != "U") {
		return SeatHolder{}, fmt.Errorf("%w: seat %q is %q", ErrUnexpectedReply, key, raw)
	}
	kind := "prepaid"
	if f[0] == "U" {
		kind = "ppu"
	}
	return SeatHolder{Key: key, Kind: kind, User: f[1], SIDs: f[2:]}, nil
}

// ParseUserSeats reads a user's seat set from the seats hash: its seat
// keys, separated by newlines.
func ParseUserSeats(raw string) []string {
	if raw == "" {
		return nil
	}
	return strings.Split(raw, "\n")
}

// Seats returns the held seats of an account.
func (s *Store) Seats(ctx context.Context, acct string) ([]SeatHolder, error) {
	m, err := s.client.HGetAll(ctx, s.keys.Seats(acct)).Result()
	if err != nil {
		return nil, err
	}
	out := make([]SeatHolder, 0, len(m))
	for key, raw := range m {
		if _, ok := SeatsFieldUser(key); ok {
			continue
		}
		if _, ok := SeatsFieldPaused(key); ok {
			continue
		}
		h, err := ParseSeat(key, raw)
		if err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, nil
}

// UserSeatCounts returns how many seat keys each of uids holds (prepaid
// and PPU; users that hold none are left out). It reads the users' seat
// sets, 1,000 at a time, not the seats themselves.
func (s *Store) UserSeatCounts(ctx context.Context, acct string, uids []string) (map[string]int, error) {
	out := map[string]int{}
	for chunk := range slices.Chunk(uids, 1000) {
		fields := make([]string, len(chunk))
		for i, uid := range chunk {
			fields[i] = "@" + uid
		}
		vals, err := s.client.HMGet(ctx, s.keys.Seats(acct), fields...).Result()
		if err != nil {
			return nil, err
		}
		for i, v := range vals {
			if raw, ok := v.(string); ok && raw != "" {
				out[chunk[i]] = len(ParseUserSeats(raw))
			}
		}
	}
	return out, nil
}

// UserSeatCount returns how many seat keys one user holds (prepaid and
// PPU), as UserSeatCounts counts them.
func (s *Store) UserSeatCount(ctx context.Context, acct, uid string) (int, error) {
	raw, err := s.client.HGet(ctx, s.keys.Seats(acct), "@"+uid).Result()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return len(ParseUserSeats(raw)), nil
}

// Ledger returns ledger entries [from, from+n) (n < 0: to the end) and the
// total count.
func (s *Store) Ledger(ctx context.Context, acct string, from, n int64) ([]LedgerEntry, int64, error) {
	pipe := s.client.Pipeline()
	stop := from + n - 1
	if n < 0 {
		stop = -1 // to the end
	}
	lr := pipe.LRange(ctx, s.keys.Ledger(acct), from, stop)
	ll := pipe.LLen(ctx, s.keys.Ledger(acct))
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, 0, err
	}
	out, err := decodeAll[LedgerEntry](lr.Val())
	return out, ll.Val(), err
}

// BilledIndexes returns, for each idempotency key, the index of the
// ledger entry filed under it (-1 for none).
func (s *Store) BilledIndexes(ctx context.Context, acct string, keys []string) ([]int64, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	vals, err := s.client.HMGet(ctx, s.keys.Billed(acct), keys...).Result()
	if err != nil {
		return nil, err
	}
	out := make([]int64, len(vals))
	for i, v := range vals {
		out[i] = -1
		if raw, ok := v.(string); ok {
			if out[i], err = strconv.ParseInt(raw, 10, 64); err != nil {
				return nil, fmt.Errorf("%w: billed index %q", ErrUnexpectedReply, raw)
			}
		}
	}
	return out, nil
}

// SessionLedger returns the ledger entries of a session's billed minutes
// 1..minutes, found through their idempotency keys ("sid:minute" -> ledger
// index): its cost follows the session's minutes, not the ledger's length.
func (s *Store) SessionLedger(ctx context.Context, acct, sid string, minutes int64) ([]LedgerEntry, error) {
	if minutes <= 0 {
		return nil, nil
	}
	fields := make([]string, minutes)
	for i := range fields {
		fields[i] = sid + ":" + strconv.Itoa(i+1)
	}
	idx, err := s.client.HMGet(ctx, s.keys.Billed(acct), fields...).Result()
	if err != nil {
		return nil, err
	}
	pipe := s.client.Pipeline()
	var cmds []*redis.StringCmd
	for _, v := range idx {
		str, ok := v.(string)
		if !ok {
			continue // not billed (cannot happen unless the store was damaged)
		}
		n, err := strconv.ParseInt(str, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%w: ledger index %q", ErrUnexpectedReply, str)
		}
		cmds = append(cmds, pipe.LIndex(ctx, s.keys.Ledger(acct), n))
	}
	if len(cmds) == 0 {
		return nil, nil
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	raw := make([]string, 0, len(cmds))
	for _, c := range cmds {
		if v, err := c.Result(); err == nil {
			raw = append(raw, v)
		}
	}
	return decodeAll[LedgerEntry](raw)
}

// ReserveCode files a live code for a session, unless the code is live
// already (false).
func (s *Store) ReserveCode(ctx context.Context, code, acct, sid string, ttl time.Duration) (bool, error) {
	return s.client.SetNX(ctx, s.keys.Code(code), acct+"/"+sid, ttl).Result()
}

// PutRejoin files a rejoin secret's hash for a session, or refreshes its
// TTL.
func (s *Store) PutRejoin(ctx context.Context, hash, acct, sid string, ttl time.Duration) error {
	return s.client.Set(ctx, s.keys.Rejoin(hash), acct+"/"+sid, ttl).Err()
}

// ResolveRejoin returns the account and session of a rejoin secret's
// hash, or StatusNotFound.
func (s *Store) ResolveRejoin(ctx context.Context, hash string) (acct, sid string, err error) {
	return s.resolveSession(ctx, s.keys.Rejoin(hash))
}

// resolveSession reads an "acct/sid" string key (a code, a rejoin secret).
func (s *Store) resolveSession(ctx context.Context, key string) (acct, sid string, err error) {
	v, err := found(s.client.Get(ctx, key).Result())
	if err != nil {
		return "", "", err
	}
	acct, sid, ok := strings.Cut(v, "/")
	if !ok {
		return "", "", fmt.Errorf("%w: %s holds %q", ErrUnexpectedReply, key, v)
	}
	return acct, sid, nil
}

// ResolveCode returns the account and session of a live code, or
// StatusNotFound.
func (s *Store) ResolveCode(ctx context.Context, code string) (acct, sid string, err error) {
	return s.resolveSession(ctx, s.keys.Code(code))
}

// DropCode forgets a code (used, or its session ended).
func (s *Store) DropCode(ctx context.Context, code string) error {
	return s.client.Del(ctx, s.keys.Code(code)).Err()
}

// PublishEvent publishes an event on the account's channel, as the
// account code does (for changes made outside it, such as revoked tokens).
func (s *Store) PublishEvent(ctx context.Context, acct string, ev Event) error {
	js, err := json.Marshal(EventBatch{Account: acct, Events: List[Event]{ev}})
	if err != nil {
		return err
	}
	return s.client.Publish(ctx, s.keys.Channel(acct), js).Err()
}

// Allow takes one request from the rate limit name: at most burst at
// once, refilled at rate per period. It answers whether the request may go
// on and, if not, when to retry. The request is taken before the caller
// acts on it, so requests that arrive together cannot all pass; one that
// turns out not to count is given back with Refund.
func (s *Store) Allow(ctx context.Context, name string, rate int, period time.Duration, burst int) (bool, time.Duration, error) {
	return s.rate(ctx, name, rate, period, burst, "take")
}

// Refund gives back one request that Allow took from the rate limit name
// (with the same rate, period and burst). A limit never holds more than its
// burst: a refund after the limit has refilled changes nothing.
func (s *Store) Refund(ctx context.Context, name string, rate int, period time.Duration, burst int) error {
	_, _, err := s.rate(ctx, name, rate, period, burst, "refund")
	return err
}

func (s *Store) rate(ctx context.Context, name string, rate int, period time.Duration, burst int, mode string) (bool, time.Duration, error) {
	v, err := scriptRate.Run(ctx, s.client, []string{s.keys.Rate(name)}, rate, period.Milliseconds(), burst, mode).Result()
	if err != nil {
		return false, 0, err
	}
	arr, ok := v.([]any)
	if !ok || len(arr) != 3 {
		return false, 0, fmt.Errorf("%w: rate %T", ErrUnexpectedReply, v)
	}
	allowed, ok1 := arr[0].(int64)
	retry, ok2 := arr[1].(int64)
	if !ok1 || !ok2 {
		return false, 0, fmt.Errorf("%w: rate", ErrUnexpectedReply)
	}
	return allowed == 1, time.Duration(retry) * time.Millisecond, nil
}
