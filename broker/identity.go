package broker

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/seatbroker/seatbroker/broker/internal/rdb"
	"github.com/seatbroker/seatbroker/broker/protocol"
	"github.com/seatbroker/seatbroker/internal/clientaddr"
)

// Sign-in rules.
const (
	MinPassword = 8
	MaxPassword = 72 // bcrypt reads no further
	// SignInRate is how many failed sign-ins one account user name, or one
	// source address (for IPv6 its /64), may have per minute (with a burst
	// of as many).
	SignInRate = 5
	// TokenPrefix starts every bearer token, so a leaked one is easy to
	// recognise in logs and scanners.
	TokenPrefix = "sbt_"
	// DefaultTokenTTL is how long a token lives unless asked otherwise.
	DefaultTokenTTL = 24 * time.Hour
	// MaxTokenTTL is the longest a token may live.
	MaxTokenTTL = 365 * 24 * time.Hour
	// MaxUserTokens is how many live tokens a user may hold: a new one
	// past it revokes those that expire first.
	MaxUserTokens = 100
)

// Token kinds.
const (
	TokenClient = "client" // desktop clients and programs (Authorization: Bearer)
	TokenWeb    = "web"    // the page's cookie session
)

// hashing is bcrypt's work factor and the dummy hash made at it.
var hashing struct {
	mu    sync.Mutex
	cost  int    // guarded by mu; tests lower it through SetBcryptCost
	dummy []byte // guarded by mu; made at cost when first needed
}

func init() { hashing.cost = bcrypt.DefaultCost }

// minTokenTTL is the shortest lifetime a token may be issued with; tests
// lower it through SetMinTokenTTL.
var minTokenTTL = time.Minute

// SetMinTokenTTL sets the shortest token lifetime (default a minute), for
// tests that watch tokens expire: call it before any test runs (TestMain).
func SetMinTokenTTL(d time.Duration) { minTokenTTL = d }

// SetBcryptCost sets the password hashing cost (default
// bcrypt.DefaultCost; tests use bcrypt.MinCost). The dummy hash that
// unknown user names are checked against is made again at the new cost.
func SetBcryptCost(c int) {
	hashing.mu.Lock()
	defer hashing.mu.Unlock()
	if c != hashing.cost {
		hashing.cost, hashing.dummy = c, nil
	}
}

func bcryptCost() int {
	hashing.mu.Lock()
	defer hashing.mu.Unlock()
	return hashing.cost
}

// dummyHash is compared against when a user does not exist (or has no
// password), so a wrong name costs as much time as a wrong password: it is
// made at the cost real passwords are hashed at.
func dummyHash() []byte {
	hashing.mu.Lock()
	defer hashing.mu.Unlock()
	if hashing.dummy == nil {
		h, err := bcrypt.GenerateFromPassword([]byte("seatbroker-dummy"), hashing.cost)
		if err != nil { // a cost bcrypt refuses; setPassword fails the same way
			h, _ = bcrypt.GenerateFromPassword([]byte("seatbroker-dummy"), bcrypt.DefaultCost)
		}
		hashing.dummy = h
	}
	return hashing.dummy
}

// SetPassword sets a user's password: the user itself, or the owner and
// admins for anyone of their account but the owner, whose password only
// the owner sets (an admin who could set it could sign in as the owner,
// the one user that cannot be blocked or demoted). Every token of the user
// stops working but keep, the caller's own token when users set their own
// password (keep is ignored otherwise): a password set after a suspected
// compromise locks out whoever signed in with the old one. The revocation
// is announced like any other.
func (b *Broker) SetPassword(ctx context.Context, p Principal, uid, password, keep string) error {
	// the user is looked up first: an unknown id, or another account's,
	// answers not_found to anyone (docs/api.md)
	if !validID(uid) {
		return ErrNotFound
	}
	u, err := b.store.User(ctx, p.Account, uid)
	if err != nil {
		return storeErr(err)
	}
	if uid != p.UserID && (!p.IsAdmin() || u.Role == protocol.RoleOwner) {
		return ErrForbidden
	}
	if err := b.setPassword(ctx, p.Account, uid, password); err != nil {
		return err
	}
	keepHash := ""
	if uid == p.UserID && keep != "" {
		keepHash = hashToken(keep)
	}
	_, err = b.revokeTokens(ctx, p.Account, uid, keepHash)
	return err
}

func (b *Broker) setPassword(ctx context.Context, acct, uid, password string) error {
	if len(password) < MinPassword || len(password) > MaxPassword {
		return invalid("password", "must be 8 to 72 bytes")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcryptCost())
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
// Attempts are rate limited per account user name and per source address
// (an IPv6 address's /64: clientaddr.LimitKey):
// each takes its place in both limits before the password is checked, so
// guesses sent at the same moment cannot pass the limits all at once, and
// only a sign-in that succeeds gives its places back. Every failure
// answers the same unauthorized, whether the account, the user or the
// password was wrong, or the user is blocked.
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
	limits := []limit{
		{name: "signin:src:" + clientaddr.LimitKey(source), rate: SignInRate},
		{name: "signin:user:" + c.Account + "/" + strings.ToLower(c.Name), rate: SignInRate},
	}
	if err := b.take(ctx, limits...); err != nil {
		return IssuedToken{}, err
	}
	p, hash, err := b.checkPassword(ctx, c)
	if err != nil {
		return IssuedToken{}, err
	}
	tok, err := b.issue(ctx, p, kind, ttl, "")
	if err != nil {
		return IssuedToken{}, err
	}
	// A password set while this one was checked revokes the tokens it
	// finds; this one may have been filed after it looked, so it is
	// checked against the password now stored and revoked if that changed.
	if err := b.stillCurrent(ctx, p, hash, tok.Token); err != nil {
		return IssuedToken{}, err
	}
	b.giveBack(ctx, limits...)
	return tok, nil
}

// checkPassword returns the principal whose password c holds, and the
// hash it matched. A user that is blocked, or has no password, is
// unauthorized like a wrong password. Its status is read before the hash
// is compared, so a right password takes no longer than a wrong one.
func (b *Broker) checkPassword(ctx context.Context, c Credentials) (Principal, string, error) {
	hash, uid := string(dummyHash()), ""
	if validAccount(c.Account) {
		id, err := b.store.UserByName(ctx, c.Account, c.Name)
		if err != nil && !isStatus(err, rdb.StatusNotFound) {
			return Principal{}, "", storeErr(err)
		}
		if err == nil {
			h, err := b.store.Secret(ctx, c.Account, id)
			if err != nil && !isStatus(err, rdb.StatusNotFound) {
				return Principal{}, "", storeErr(err)
			}
			if err == nil {
				hash, uid = h, id
			}
		}
	}
	var p Principal
	perr := ErrUnauthorized // no such user, or one without a password
	if uid != "" {
		p, perr = b.PrincipalFor(ctx, c.Account, uid)
	}
	if bcrypt.CompareHashAndPassword([]byte(hash), []byte(c.Password)) != nil {
		return Principal{}, "", ErrUnauthorized
	}
	if errors.Is(perr, ErrUnauthorized) || errors.Is(perr, ErrNotFound) || errors.Is(perr, ErrUserBlocked) {
		return Principal{}, "", ErrUnauthorized
	}
	if perr != nil {
		return Principal{}, "", perr
	}
	return p, hash, nil
}

// stillCurrent revokes the token just issued to p if p's password is no
// longer hash.
func (b *Broker) stillCurrent(ctx context.Context, p Principal, hash, tok string) error {
	now, err := b.store.Secret(ctx, p.Account, p.UserID)
	if err == nil && now == hash {
		return nil
	}
	if derr := b.store.DeleteToken(ctx, p.Account, p.UserID, hashToken(tok)); derr != nil {
		return storeErr(derr)
	}
	if err != nil && !isStatus(err, rdb.StatusNotFound) {
		return storeErr(err)
	}
	return ErrUnauthorized
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
	now := b.Now(ctx, p.Account)
	rec := rdb.TokenRec{Account: p.Account, User: p.UserID, Kind: kind,
		Expires: now.Add(ttl).UnixMilli(), Created: now.UnixMilli(), Label: label}
	over, err := b.store.PutToken(ctx, hashToken(tok), rec, ttl, MaxUserTokens)
	if errors.Is(err, rdb.ErrTokenRevoked) {
		// the user's tokens were revoked as this one was made (sign out
		// everywhere, a new password): it is not given out
		return IssuedToken{}, ErrUnauthorized
	}
	if err != nil {
		return IssuedToken{}, storeErr(err)
	}
	// past MaxUserTokens, those that expire first are signed out: best
	// effort (one left over is revoked by the next sign-in)
	for i, h := range over {
		if err := b.store.DeleteToken(ctx, p.Account, p.UserID, h); err != nil {
			b.log.Warn("could not revoke a token past the user's limit", "account", p.Account, "err", err)
			over = over[:i]
			break
		}
	}
	if len(over) > 0 {
		b.tokensRevoked(ctx, p.Account, p.UserID)
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
	if rec.Kind != kind || rec.Expires <= b.Now(ctx, rec.Account).UnixMilli() {
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
	if err := b.store.DeleteToken(ctx, rec.Account, rec.User, h); err != nil {
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

// RevokeUserTokens revokes every token of a user: "sign out everywhere".
// The user itself may, and the owner and admins for anyone of their
// account but the owner, whose tokens only the owner revokes.
func (b *Broker) RevokeUserTokens(ctx context.Context, p Principal, uid string) (int, error) {
	if uid != p.UserID {
		if !p.IsAdmin() {
			return 0, ErrForbidden
		}
		if !validID(uid) {
			return 0, ErrNotFound
		}
		u, err := b.store.User(ctx, p.Account, uid)
		if err != nil {
			return 0, storeErr(err)
		}
		if u.Role == protocol.RoleOwner {
			return 0, ErrForbidden
		}
	}
	return b.revokeTokens(ctx, p.Account, uid, "")
}

// revokeTokens revokes every token of a user but the one whose hash is
// keep, and announces it.
func (b *Broker) revokeTokens(ctx context.Context, acct, uid, keep string) (int, error) {
	hashes, err := b.store.UserTokens(ctx, acct, uid)
	if err != nil {
		return 0, storeErr(err)
	}
	n := 0
	for _, h := range hashes {
		if h != keep {
			if err := b.store.DeleteToken(ctx, acct, uid, h); err != nil {
				if n > 0 {
					b.tokensRevoked(ctx, acct, uid)
				}
				return n, storeErr(err)
			}
			n++
		}
	}
	if n > 0 {
		b.tokensRevoked(ctx, acct, uid)
	}
	return n, nil
}
