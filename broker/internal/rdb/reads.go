package rdb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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

// AccountIDs lists every account.
func (s *Store) AccountIDs(ctx context.Context) ([]string, error) {
	return s.client.SMembers(ctx, s.keys.Accounts()).Result()
}

// User returns one user, or StatusNotFound.
func (s *Store) User(ctx context.Context, acct, uid string) (UserRec, error) {
	raw, err := s.client.HGet(ctx, s.keys.Users(acct), uid).Result()
	if errors.Is(err, redis.Nil) {
		return UserRec{}, statusErr(StatusNotFound)
	}
	if err != nil {
		return UserRec{}, err
	}
	var u UserRec
	if err := json.Unmarshal([]byte(raw), &u); err != nil {
		return UserRec{}, fmt.Errorf("%w: %w", ErrUnexpectedReply, err)
	}
	return u, nil
}

// Users returns every user of an account.
func (s *Store) Users(ctx context.Context, acct string) ([]UserRec, error) {
	vals, err := s.client.HVals(ctx, s.keys.Users(acct)).Result()
	if err != nil {
		return nil, err
	}
	out := make([]UserRec, 0, len(vals))
	for _, raw := range vals {
		var u UserRec
		if err := json.Unmarshal([]byte(raw), &u); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrUnexpectedReply, err)
		}
		out = append(out, u)
	}
	return out, nil
}

// Session returns one session, or StatusNotFound.
func (s *Store) Session(ctx context.Context, acct, sid string) (SessionRec, error) {
	raw, err := s.client.HGet(ctx, s.keys.Sessions(acct), sid).Result()
	if errors.Is(err, redis.Nil) {
		return SessionRec{}, statusErr(StatusNotFound)
	}
	if err != nil {
		return SessionRec{}, err
	}
	var r SessionRec
	if err := json.Unmarshal([]byte(raw), &r); err != nil {
		return SessionRec{}, fmt.Errorf("%w: %w", ErrUnexpectedReply, err)
	}
	return r, nil
}

// Sessions returns every session of an account, ended ones included until
// their retention runs out.
func (s *Store) Sessions(ctx context.Context, acct string) ([]SessionRec, error) {
	vals, err := s.client.HVals(ctx, s.keys.Sessions(acct)).Result()
	if err != nil {
		return nil, err
	}
	out := make([]SessionRec, 0, len(vals))
	for _, raw := range vals {
		var r SessionRec
		if err := json.Unmarshal([]byte(raw), &r); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrUnexpectedReply, err)
		}
		out = append(out, r)
	}
	return out, nil
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
		var r SessionRec
		if err := json.Unmarshal([]byte(raw), &r); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrUnexpectedReply, err)
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

// Seats returns the held seats of an account.
func (s *Store) Seats(ctx context.Context, acct string) ([]SeatHolder, error) {
	m, err := s.client.HGetAll(ctx, s.keys.Seats(acct)).Result()
	if err != nil {
		return nil, err
	}
	out := make([]SeatHolder, 0, len(m))
	for key, raw := range m {
		var p struct {
			Kind string          `json:"kind"`
			User string          `json:"user"`
			SIDs json.RawMessage `json:"sids"`
		}
		if err := json.Unmarshal([]byte(raw), &p); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrUnexpectedReply, err)
		}
		var sids map[string]bool
		if string(p.SIDs) != "[]" {
			if err := json.Unmarshal(p.SIDs, &sids); err != nil {
				return nil, fmt.Errorf("%w: %w", ErrUnexpectedReply, err)
			}
		}
		h := SeatHolder{Key: key, Kind: p.Kind, User: p.User}
		for sid := range sids {
			h.SIDs = append(h.SIDs, sid)
		}
		out = append(out, h)
	}
	return out, nil
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
	out := make([]LedgerEntry, 0, len(lr.Val()))
	for _, raw := range lr.Val() {
		var e LedgerEntry
		if err := json.Unmarshal([]byte(raw), &e); err != nil {
			return nil, 0, fmt.Errorf("%w: %w", ErrUnexpectedReply, err)
		}
		out = append(out, e)
	}
	return out, ll.Val(), nil
}

// Now returns the Redis server's clock.
func (s *Store) Now(ctx context.Context) (time.Time, error) {
	return s.client.Time(ctx).Result()
}

// ReserveCode files a live code for a session, unless the code is live
// already (false).
func (s *Store) ReserveCode(ctx context.Context, code, acct, sid string, ttl time.Duration) (bool, error) {
	return s.client.SetNX(ctx, s.keys.Code(code), acct+"/"+sid, ttl).Result()
}

// ResolveCode returns the account and session of a live code, or
// StatusNotFound.
func (s *Store) ResolveCode(ctx context.Context, code string) (acct, sid string, err error) {
	v, err := s.client.Get(ctx, s.keys.Code(code)).Result()
	if errors.Is(err, redis.Nil) {
		return "", "", statusErr(StatusNotFound)
	}
	if err != nil {
		return "", "", err
	}
	acct, sid, ok := strings.Cut(v, "/")
	if !ok {
		return "", "", fmt.Errorf("%w: code %q", ErrUnexpectedReply, v)
	}
	return acct, sid, nil
}

// DropCode forgets a code (used, or its session ended).
func (s *Store) DropCode(ctx context.Context, code string) error {
	return s.client.Del(ctx, s.keys.Code(code)).Err()
}

// Allow takes cost requests from the rate limit name (cost 0 only looks
// whether one more would be allowed): at most burst at once, refilled at
// rate per period. It answers whether
// the request may go on and, if not, when to retry.
func (s *Store) Allow(ctx context.Context, name string, rate int, period time.Duration, burst, cost int) (bool, time.Duration, error) {
	v, err := scriptRate.Run(ctx, s.client, []string{s.keys.Rate(name)}, rate, period.Milliseconds(), burst, cost).Result()
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
