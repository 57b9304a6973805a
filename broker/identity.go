package broker

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/seatbroker/seatbroker/broker/internal/rdb"
	"github.com/seatbroker/seatbroker/broker/protocol"
)

// Sign-in rules.
const (
	MinPassword = 8
	MaxPassword = 72 // bcrypt reads no further
	// SignInRate is how many failed sign-ins one account user name, or one
	// source address, may have per minute (with a burst of as many).
	SignInRate = 5
	// TokenPrefix starts every bearer token, so a leaked one is easy to
	// recognise in logs and scanners.
	TokenPrefix = "sbt_"
	// DefaultTokenTTL is how long a token lives unless asked otherwise.
	DefaultTokenTTL = 24 * time.Hour
	// MaxTokenTTL is the longest a token may live.
	MaxTokenTTL = 365 * 24 * time.Hour
)

// Token kinds.
const (
	TokenClient = "client" // desktop clients and programs (Authorization: Bearer)
	TokenWeb    = "web"    // the page's cookie session
)

// bcryptCost is bcrypt's work factor; tests lower it through SetBcryptCost.
var bcryptCost = bcrypt.DefaultCost

// SetBcryptCost sets the password hashing cost (tests use bcrypt.MinCost).
func SetBcryptCost(c int) { bcryptCost = c }

// minTokenTTL is the shortest lifetime a token may be issued with; tests
// lower it through SetMinTokenTTL.
var minTokenTTL = time.Minute

// SetMinTokenTTL sets the shortest token lifetime (default a minute), for
// tests that watch tokens expire: call it before any test runs (TestMain).
func SetMinTokenTTL(d time.Duration) { minTokenTTL = d }

// dummyHash is compared against when a user does not exist, so a wrong
// name costs as much time as a wrong password.
var dummyHash, _ = bcrypt.GenerateFromPassword([]byte("seatbroker-dummy"), bcrypt.MinCost)

// SetPassword sets a user's password: the user itself, or the owner and
// admins for anyone of their account.
func (b *Broker) SetPassword(ctx context.Context, p Principal, uid, password string) error {
	// the user is looked up first: an unknown id, or another account's,
	// answers not_found to anyone (docs/api.md)
	if !validID(uid) {
		return ErrNotFound
	}
	if _, err := b.store.User(ctx, p.Account, uid); err != nil {
		return storeErr(err)
	}
	if uid != p.UserID && !p.IsAdmin() {
		return ErrForbidden
	}
	return b.setPassword(ctx, p.Account, uid, password)
}

func (b *Broker) setPassword(ctx context.Context, acct, uid, password string) error {
	if len(password) < MinPassword || len(password) > MaxPassword {
		return invalid("password", "must be 8 to 72 bytes")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcryptCost)
	if err != nil {
		return err
	}
	return storeErr(b.store.SetSecret(ctx, acct, uid, string(h)))
}

// Bootstrap creates an account with its owner and the owner's password:
// the first-run path (seatctl init, the demo seed). It is not reachable
// over the API.
func (b *Broker) Bootstrap(ctx context.Context, spec AccountSpec, password string) (protocol.User, error) {
	if len(password) < MinPassword || len(password) > MaxPassword {
		return protocol.User{}, invalid("password", "must be 8 to 72 bytes")
	}
	_, owner, err := b.CreateAccount(ctx, spec)
	if err != nil {
		return protocol.User{}, err
	}
	return owner, b.setPassword(ctx, spec.ID, owner.ID, password)
}

// Credentials are what a person types to sign in.
type Credentials struct {
	Account  string
	Name     string
	Password string
}

// Session tokens are returned once, at sign-in.
type IssuedToken struct {
	Token     string
	Principal Principal
	Expires   time.Time
}

// SignIn checks a password and issues a token of kind (client or web).
// Failed attempts are rate limited per account user name and per source
// address; every failure answers the same unauthorized, whether the
// account, the user or the password was wrong.
func (b *Broker) SignIn(ctx context.Context, c Credentials, source, kind string, ttl time.Duration) (IssuedToken, error) {
	if kind != TokenClient && kind != TokenWeb {
		return IssuedToken{}, invalid("kind", "must be client or web")
	}
	if ttl == 0 {
		ttl = DefaultTokenTTL
	}
	if ttl < minTokenTTL || ttl > MaxTokenTTL {
		return IssuedToken{}, invalid("ttl", "must be a minute to a year")
	}
	if len(c.Name) > MaxName || len(c.Password) > MaxPassword || len(c.Account) > 63 {
		return IssuedToken{}, ErrUnauthorized
	}
	limits := []string{"signin:src:" + source, "signin:user:" + c.Account + "/" + strings.ToLower(c.Name)}
	for _, l := range limits {
		ok, retry, err := b.store.Allow(ctx, l, SignInRate, time.Minute, SignInRate, true)
		if err != nil {
			return IssuedToken{}, storeErr(err)
		}
		if !ok {
			return IssuedToken{}, &RateLimitedError{RetryAfterSec: int((retry + time.Second - 1) / time.Second)}
		}
	}
	p, err := b.checkPassword(ctx, c)
	if errors.Is(err, ErrUnauthorized) {
		for _, l := range limits {
			if _, _, rerr := b.store.Allow(ctx, l, SignInRate, time.Minute, SignInRate, false); rerr != nil {
				return IssuedToken{}, storeErr(rerr)
			}
		}
	}
	if err != nil {
		return IssuedToken{}, err
	}
	return b.issue(ctx, p, kind, ttl, "")
}

func (b *Broker) checkPassword(ctx context.Context, c Credentials) (Principal, error) {
	hash := string(dummyHash)
	uid := ""
	if validAccount(c.Account) {
		if id, err := b.store.UserByName(ctx, c.Account, c.Name); err == nil {
			if h, err := b.store.Secret(ctx, c.Account, id); err == nil {
				hash, uid = h, id
			}
		} else if !isStatus(err, rdb.StatusNotFound) {
			return Principal{}, storeErr(err)
		}
	}
	if bcrypt.CompareHashAndPassword([]byte(hash), []byte(c.Password)) != nil || uid == "" {
		return Principal{}, ErrUnauthorized
	}
	p, err := b.PrincipalFor(ctx, c.Account, uid)
	if errors.Is(err, ErrNotFound) {
		return Principal{}, ErrUnauthorized
	}
	return p, err
}

func isStatus(err error, st rdb.Status) bool {
	var se *rdb.StatusError
	return errors.As(err, &se) && se.Status == st
}

// IssueToken issues a client token for the principal itself (a program's
// API key), with a label to recognise it by.
func (b *Broker) IssueToken(ctx context.Context, p Principal, ttl time.Duration, label string) (IssuedToken, error) {
	if ttl == 0 {
		ttl = DefaultTokenTTL
	}
	if ttl < minTokenTTL || ttl > MaxTokenTTL {
		return IssuedToken{}, invalid("ttl", "must be a minute to a year")
	}
	if err := checkText("label", label, MaxName, false); err != nil {
		return IssuedToken{}, err
	}
	return b.issue(ctx, p, TokenClient, ttl, label)
}

func (b *Broker) issue(ctx context.Context, p Principal, kind string, ttl time.Duration, label string) (IssuedToken, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return IssuedToken{}, err
	}
	tok := TokenPrefix + p.Account + "_" + base64.RawURLEncoding.EncodeToString(raw)
	now := b.Now()
	rec := rdb.TokenRec{Account: p.Account, User: p.UserID, Kind: kind,
		Expires: now.Add(ttl).UnixMilli(), Created: now.UnixMilli(), Label: label}
	if err := b.store.PutToken(ctx, hashToken(tok), rec, ttl); err != nil {
		return IssuedToken{}, storeErr(err)
	}
	return IssuedToken{Token: tok, Principal: p, Expires: now.Add(ttl)}, nil
}

// hashToken is what is stored of a token: its SHA-256. Tokens carry 256
// random bits, so a fast hash is enough (no dictionary to attack).
func hashToken(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:])
}

// Authenticate returns the principal of a token of kind, with its current
// permissions; a revoked or expired token, or a blocked user, is refused
// at once.
func (b *Broker) Authenticate(ctx context.Context, token, kind string) (Principal, error) {
	p, _, err := b.AuthenticateUntil(ctx, token, kind)
	return p, err
}

// AuthenticateUntil is Authenticate that also says when the token expires,
// on the Redis clock (compare with Now): a stream or connection signed in
// with it ends then, since nothing else would check it again.
func (b *Broker) AuthenticateUntil(ctx context.Context, token, kind string) (Principal, time.Time, error) {
	if !strings.HasPrefix(token, TokenPrefix) || len(token) > 200 {
		return Principal{}, time.Time{}, ErrUnauthorized
	}
	rec, err := b.store.Token(ctx, hashToken(token))
	if isStatus(err, rdb.StatusNotFound) {
		return Principal{}, time.Time{}, ErrUnauthorized
	}
	if err != nil {
		return Principal{}, time.Time{}, storeErr(err)
	}
	if rec.Kind != kind || rec.Expires <= b.Now().UnixMilli() {
		return Principal{}, time.Time{}, ErrUnauthorized
	}
	p, err := b.PrincipalFor(ctx, rec.Account, rec.User)
	if errors.Is(err, ErrNotFound) {
		return Principal{}, time.Time{}, ErrUnauthorized
	}
	if err != nil {
		return Principal{}, time.Time{}, err
	}
	return p, time.UnixMilli(rec.Expires), nil
}

// Revoke revokes a token. Revoking one's own token (sign out) is always
// allowed; owner and admins may revoke any token of their account.
func (b *Broker) Revoke(ctx context.Context, p Principal, token string) error {
	h := hashToken(token)
	rec, err := b.store.Token(ctx, h)
	if isStatus(err, rdb.StatusNotFound) {
		return nil // revoking twice changes nothing
	}
	if err != nil {
		return storeErr(err)
	}
	if rec.Account != p.Account || (rec.User != p.UserID && !p.IsAdmin()) {
		return ErrNotFound
	}
	if err := b.store.DeleteToken(ctx, rec.Account, h); err != nil {
		return storeErr(err)
	}
	b.tokensRevoked(ctx, rec.Account, rec.User)
	return nil
}

// tokensRevoked tells every node that tokens of a user were revoked, so
// connections signed in with them close now rather than at their next
// reconnect. The revocation stands without it: a node that misses the
// message refuses the token at the next reconnect.
func (b *Broker) tokensRevoked(ctx context.Context, acct, uid string) {
	if err := b.store.PublishEvent(ctx, acct, rdb.Event{Type: EventTokens, UserID: uid}); err != nil {
		b.log.Warn("could not announce revoked tokens", "account", acct, "err", err)
	}
}

// RevokeUserTokens revokes every token of a user (owner and admins, or
// the user itself): "sign out everywhere".
func (b *Broker) RevokeUserTokens(ctx context.Context, p Principal, uid string) (int, error) {
	if uid != p.UserID && !p.IsAdmin() {
		return 0, ErrForbidden
	}
	toks, err := b.store.Tokens(ctx, p.Account)
	if err != nil {
		return 0, storeErr(err)
	}
	n := 0
	for h, t := range toks {
		if t.User == uid {
			if err := b.store.DeleteToken(ctx, p.Account, h); err != nil {
				return n, storeErr(err)
			}
			n++
		}
	}
	if n > 0 {
		b.tokensRevoked(ctx, p.Account, uid)
	}
	return n, nil
}
