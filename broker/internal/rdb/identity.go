package rdb

import (
	"context"
	"errors"
	"fmt"
	json "github.com/goccy/go-json"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// TokenRec is a bearer token as stored, under the SHA-256 of the token:
// the token itself is never stored.
type TokenRec struct {
	Account string `json:"account"`
	User    string `json:"user"`
	Kind    string `json:"kind"`
	Expires int64  `json:"expires"` // ms
	Created int64  `json:"created"` // ms
	Label   string `json:"label,omitempty"`
}

// UserByName returns the id of the user with this name (any case).
func (s *Store) UserByName(ctx context.Context, acct, name string) (string, error) {
	return found(s.client.HGet(ctx, s.keys.Names(acct), strings.ToLower(name)).Result())
}

// SetSecret stores a user's password hash.
func (s *Store) SetSecret(ctx context.Context, acct, uid, hash string) error {
	return s.client.HSet(ctx, s.keys.Secrets(acct), uid, hash).Err()
}

// Secret returns a user's password hash, or StatusNotFound.
func (s *Store) Secret(ctx context.Context, acct, uid string) (string, error) {
	return found(s.client.HGet(ctx, s.keys.Secrets(acct), uid).Result())
}

// ErrTokenRevoked means the token PutToken filed was revoked while it was
// filed: "sign out everywhere" (or a new password) of its user ran between
// the two steps, and the token was never given out.
var ErrTokenRevoked = errors.New("rdb: the user's tokens were revoked while the token was filed")

// PutToken files a token under its hash: in the account's list first
// (dropping the list's expired tokens, token_put.lua), then in the global
// lookup with the token's lifetime as TTL. In that order a crash between
// the two leaves a listed token that does not work, never a working token
// that "sign out everywhere" cannot find. A revocation of the user's
// tokens can still run between the two (it reads the list, deletes the
// lookup that is not there yet, unlists the token): so after the lookup is
// set, the token must still be on its user's list, or its lookup is
// deleted again and PutToken returns ErrTokenRevoked. Otherwise the token
// would work until it expired, listed nowhere that a later "sign out
// everywhere" reads. (When the check runs before the revocation unlists
// the token, it passes, and DeleteToken's second delete of the lookup
// comes after the lookup was set: the token is handed out but never
// works.) It returns the hashes of the user's tokens past
// maxPerUser (those that expire first, never this one), for the caller to
// revoke.
func (s *Store) PutToken(ctx context.Context, hash string, t TokenRec, ttl time.Duration, maxPerUser int) ([]string, error) {
	js, _ := json.Marshal(t)
	keys := []string{s.keys.Tokens(t.Account), s.keys.TokenExpiry(t.Account), s.keys.UserTokens(t.Account, t.User)}
	reply, err := scriptTokenPut.Run(ctx, s.client, keys, hash, string(js), t.Expires, maxPerUser).Slice()
	if err != nil {
		return nil, err
	}
	if len(reply) < 2 {
		return nil, fmt.Errorf("%w: token_put %v", ErrUnexpectedReply, reply)
	}
	var over []string
	for _, v := range reply[2:] {
		h, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("%w: token_put %v", ErrUnexpectedReply, reply)
		}
		over = append(over, h)
	}
	if s.tokenListed != nil {
		s.tokenListed()
	}
	if err := s.client.Set(ctx, s.keys.Token(hash), js, ttl).Err(); err != nil {
		return nil, err
	}
	err = s.client.ZScore(ctx, s.keys.UserTokens(t.Account, t.User), hash).Err()
	if errors.Is(err, redis.Nil) {
		if err := s.client.Del(ctx, s.keys.Token(hash)).Err(); err != nil {
			return nil, err
		}
		return nil, ErrTokenRevoked
	}
	if err != nil {
		return nil, err
	}
	return over, nil
}

// Token returns the token filed under hash, or StatusNotFound.
func (s *Store) Token(ctx context.Context, hash string) (TokenRec, error) {
	raw, err := found(s.client.Get(ctx, s.keys.Token(hash)).Result())
	if err != nil {
		return TokenRec{}, err
	}
	return decodeJSON[TokenRec](raw)
}

// DeleteToken revokes a token of user uid: the global lookup goes first,
// so the token stops working at once, then the lists, then the lookup
// again. A PutToken of this token may set the lookup between the first
// delete and the unlisting, and check the user's list before the
// unlisting (it finds the token there, and hands it out): the second
// delete comes after both, so the token never works.
func (s *Store) DeleteToken(ctx context.Context, acct, uid, hash string) error {
	if err := s.client.Del(ctx, s.keys.Token(hash)).Err(); err != nil {
		return err
	}
	if s.tokenUnlisting != nil {
		s.tokenUnlisting()
	}
	// the account's lists and the user's share a slot: one round trip
	pipe := s.client.Pipeline()
	pipe.HDel(ctx, s.keys.Tokens(acct), hash)
	pipe.ZRem(ctx, s.keys.TokenExpiry(acct), hash)
	pipe.ZRem(ctx, s.keys.UserTokens(acct, uid), hash)
	if _, err := pipe.Exec(ctx); err != nil {
		return err
	}
	return s.client.Del(ctx, s.keys.Token(hash)).Err()
}

// UserTokens lists the hashes of a user's tokens, from the user's own list
// (token_put.lua files a token there and in the account's list in one
// step), so that revoking them reads that user's tokens alone, whatever
// the account holds. Expired ones stay listed until the user's next token
// drops them; deleting one of those is harmless.
func (s *Store) UserTokens(ctx context.Context, acct, uid string) ([]string, error) {
	return s.client.ZRange(ctx, s.keys.UserTokens(acct, uid), 0, -1).Result()
}
