package httpapi_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/seatbroker/seatbroker/broker"
	"github.com/seatbroker/seatbroker/broker/httpapi"
	"github.com/seatbroker/seatbroker/broker/protocol"
	"github.com/seatbroker/seatbroker/broker/server"
	"github.com/seatbroker/seatbroker/internal/clientaddr"
)

// webSession signs in to the page: the cookie and the CSRF token.
func (e *env) webSession(acct, name string) (*http.Cookie, string) {
	e.t.Helper()
	var out struct {
		CSRFToken string `json:"csrf_token"`
		User      protocol.User
	}
	r := e.mustDo(http.MethodPost, "/api/v1/auth/signin", "", map[string]string{
		"account": acct, "name": name, "password": password}, &out)
	var ck *http.Cookie
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		if c.Name == httpapi.CookieName {
			ck = c
		}
	}
	require.NotNil(e.t, ck, "sign-in sets the session cookie")
	require.NotEmpty(e.t, out.CSRFToken)
	require.Equal(e.t, name, out.User.Name)
	return ck, out.CSRFToken
}

func cookieHeader(ck *http.Cookie) string { return ck.Name + "=" + ck.Value }

func TestWebSignInSetsStrictHttpOnlyCookie(t *testing.T) {
	t.Parallel()
	for _, secure := range []bool{false, true} {
		e := newEnv(t, server.Options{SecureCookies: secure})
		a := e.account(3, false)
		ck, _ := e.webSession(a.id, "owner")
		assert.True(t, ck.HttpOnly)
		assert.Equal(t, http.SameSiteStrictMode, ck.SameSite)
		assert.Equal(t, "/", ck.Path)
		assert.Equal(t, secure, ck.Secure)
		assert.True(t, strings.HasPrefix(ck.Value, "sbt_"))
	}
}

// TestCookieRequestsNeedTheCSRFHeader: with the cookie alone, reads work
// and every state-changing request is forbidden until it carries the
// session's CSRF token; a foreign Origin is refused.
func TestCookieRequestsNeedTheCSRFHeader(t *testing.T) {
	t.Parallel()
	e := newEnv(t, server.Options{AllowedOrigins: []string{"https://page.example"}})
	a := e.account(3, false)
	ck, csrf := e.webSession(a.id, "owner")
	c := cookieHeader(ck)

	var me struct {
		CSRFToken string `json:"csrf_token"`
	}
	r := e.request(http.MethodGet, "/api/v1/me", "", nil, "Cookie", c)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	require.NoError(t, jsonUnmarshal(r.body, &me))
	assert.Equal(t, csrf, me.CSRFToken, "/me repeats the session's CSRF token")

	topup := map[string]int{"minutes": 5}
	before := e.snapshot()
	for _, hdr := range [][]string{
		{"Cookie", c},
		{"Cookie", c, httpapi.CSRFHeader, "wrong"},
		{"Cookie", c, httpapi.CSRFHeader, csrf + "x"},
		{"Cookie", c, httpapi.CSRFHeader, csrf, "Origin", "https://evil.example"},
		{"Cookie", c, httpapi.CSRFHeader, csrf, "Origin", "null"},
	} {
		r := e.request(http.MethodPost, "/api/v1/ppu/topup", "", topup, hdr...)
		assert.Equal(t, http.StatusForbidden, r.status, "%v", hdr)
		assert.Equal(t, protocol.CodeForbidden, r.errCode(t))
	}
	assert.Equal(t, before, e.snapshot(), "refused requests change nothing")

	r = e.request(http.MethodPost, "/api/v1/ppu/topup", "", topup, "Cookie", c, httpapi.CSRFHeader, csrf)
	assert.Equal(t, http.StatusOK, r.status, string(r.body))
	r = e.request(http.MethodPost, "/api/v1/ppu/topup", "", topup, "Cookie", c, httpapi.CSRFHeader, csrf, "Origin", e.srv.URL)
	assert.Equal(t, http.StatusOK, r.status, "same origin: %s", r.body)
	r = e.request(http.MethodPost, "/api/v1/ppu/topup", "", topup, "Cookie", c, httpapi.CSRFHeader, csrf, "Origin", "https://page.example")
	assert.Equal(t, http.StatusOK, r.status, "allowed origin: %s", r.body)
	// a bearer token needs no CSRF header: no browser sends it by itself
	r = e.request(http.MethodPost, "/api/v1/ppu/topup", a.token, topup)
	assert.Equal(t, http.StatusOK, r.status)

	// sign out: the cookie is cleared and stops working
	r = e.request(http.MethodPost, "/api/v1/auth/signout", "", nil, "Cookie", c, httpapi.CSRFHeader, csrf)
	require.Equal(t, http.StatusNoContent, r.status, string(r.body))
	cleared := (&http.Response{Header: r.header}).Cookies()
	require.Len(t, cleared, 1)
	assert.True(t, cleared[0].MaxAge < 0)
	r = e.request(http.MethodGet, "/api/v1/me", "", nil, "Cookie", c)
	assert.Equal(t, http.StatusUnauthorized, r.status)
	assert.Equal(t, protocol.CodeUnauthorized, r.errCode(t))
}

// TestTokenKindsDoNotMix: a page cookie's token is no bearer token and a
// client token is no cookie.
func TestTokenKindsDoNotMix(t *testing.T) {
	t.Parallel()
	e := newEnv(t, server.Options{})
	a := e.account(3, false)
	ck, _ := e.webSession(a.id, "owner")
	assert.Equal(t, http.StatusUnauthorized, e.request(http.MethodGet, "/api/v1/me", ck.Value, nil).status)
	assert.Equal(t, http.StatusUnauthorized, e.request(http.MethodGet, "/api/v1/me", "", nil, "Cookie", httpapi.CookieName+"="+a.token).status)
	assert.Equal(t, http.StatusUnauthorized, e.request(http.MethodGet, "/api/v1/me", "", nil, "Authorization", "Basic "+a.token).status)
	assert.Equal(t, http.StatusUnauthorized, e.request(http.MethodGet, "/api/v1/me", "", nil).status)
	assert.Equal(t, http.StatusOK, e.request(http.MethodGet, "/api/v1/me", a.token, nil).status)
}

// TestTokensAreStoredOnlyAsHashes reads every key and value of the
// broker's Redis: no token, nor its random part, is there in the clear.
func TestTokensAreStoredOnlyAsHashes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, server.Options{})
	a := e.account(3, false)
	ck, csrf := e.webSession(a.id, "owner")
	secrets := []string{a.token, ck.Value, csrf}
	for _, tok := range []string{a.token, ck.Value} {
		// sbt_<account>_<random>: the random part may hold "_" itself
		parts := strings.SplitN(tok, "_", 3)
		require.Len(t, parts, 3)
		require.GreaterOrEqual(t, len(parts[2]), 40)
		secrets = append(secrets, parts[2])
	}
	n := 0
	iter := e.rc.Scan(e.ctx, 0, e.prefix+":*", 1000).Iterator()
	for iter.Next(e.ctx) {
		k := iter.Val()
		n++
		all := k + "\n" + e.dumpText(k)
		for _, s := range secrets {
			assert.NotContains(t, all, s, "key %s", k)
		}
	}
	require.NoError(t, iter.Err())
	assert.Greater(t, n, 3, "the scan saw the account's keys")
	// and the tokens work, so what is stored does identify them
	assert.Equal(t, http.StatusOK, e.request(http.MethodGet, "/api/v1/me", a.token, nil).status)
}

// dumpText reads any key's value as text.
func (e *env) dumpText(k string) string {
	e.t.Helper()
	typ, err := e.rc.Type(e.ctx, k).Result()
	require.NoError(e.t, err)
	var parts []string
	switch typ {
	case "string":
		v, err := e.rc.Get(e.ctx, k).Result()
		require.NoError(e.t, err)
		parts = append(parts, v)
	case "hash":
		m, err := e.rc.HGetAll(e.ctx, k).Result()
		require.NoError(e.t, err)
		for f, v := range m {
			parts = append(parts, f, v)
		}
	case "list":
		v, err := e.rc.LRange(e.ctx, k, 0, -1).Result()
		require.NoError(e.t, err)
		parts = v
	case "set":
		v, err := e.rc.SMembers(e.ctx, k).Result()
		require.NoError(e.t, err)
		parts = v
	case "zset":
		v, err := e.rc.ZRangeWithScores(e.ctx, k, 0, -1).Result()
		require.NoError(e.t, err)
		for _, z := range v {
			parts = append(parts, z.Member.(string))
		}
	case "none":
	default:
		e.t.Fatalf("key %s of type %s", k, typ)
	}
	return strings.Join(parts, "\n")
}

// TestRevokedTokenStopsAtOnce: a stolen token stops working the moment
// it is revoked - by signing out with it, or by an admin signing its user
// out everywhere - and blocking a user stops all of its tokens.
func TestRevokedTokenStopsAtOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, server.Options{})
	a := e.account(3, false)
	m := a.user("m", protocol.RoleMember)

	stolen := e.signIn(a.id, "m")
	require.Equal(t, http.StatusOK, e.request(http.MethodGet, "/api/v1/me", stolen, nil).status)
	e.mustDo(http.MethodPost, "/api/v1/auth/signout", stolen, nil, nil)
	r := e.request(http.MethodGet, "/api/v1/me", stolen, nil)
	assert.Equal(t, http.StatusUnauthorized, r.status)
	assert.Equal(t, protocol.CodeUnauthorized, r.errCode(t))

	stolen, other := e.signIn(a.id, "m"), e.signIn(a.id, "m")
	var rv struct{ Revoked int }
	e.mustDo(http.MethodPost, "/api/v1/users/"+m.ID+"/revoke-tokens", a.token, nil, &rv)
	assert.Equal(t, 2, rv.Revoked)
	assert.Equal(t, http.StatusUnauthorized, e.request(http.MethodGet, "/api/v1/me", stolen, nil).status)
	assert.Equal(t, http.StatusUnauthorized, e.request(http.MethodGet, "/api/v1/me", other, nil).status)
	assert.Equal(t, http.StatusOK, e.request(http.MethodGet, "/api/v1/me", a.token, nil).status, "the admin's own token lives on")

	tok := e.signIn(a.id, "m")
	e.mustDo(http.MethodPost, "/api/v1/users/"+m.ID+"/block", a.token, nil, nil)
	r = e.request(http.MethodGet, "/api/v1/me", tok, nil)
	assert.Equal(t, http.StatusForbidden, r.status)
	assert.Equal(t, protocol.CodeUserBlocked, r.errCode(t))
	e.mustDo(http.MethodPost, "/api/v1/users/"+m.ID+"/unblock", a.token, nil, nil)
	assert.Equal(t, http.StatusOK, e.request(http.MethodGet, "/api/v1/me", tok, nil).status)
}

// TestWrongPasswordsAreRateLimited: after 5 failures a minute for one
// user name, even the right password waits, with Retry-After.
func TestWrongPasswordsAreRateLimited(t *testing.T) {
	t.Parallel()
	e := newEnv(t, server.Options{})
	a := e.account(3, false)
	body := func(pw string) map[string]string {
		return map[string]string{"account": a.id, "name": "owner", "password": pw, "kind": "client"}
	}
	for i := range 5 {
		r := e.request(http.MethodPost, "/api/v1/auth/signin", "", body("wrong-password"))
		require.Equal(t, http.StatusUnauthorized, r.status, "attempt %d", i+1)
		assert.Equal(t, protocol.CodeUnauthorized, r.errCode(t))
	}
	r := e.request(http.MethodPost, "/api/v1/auth/signin", "", body(password))
	assert.Equal(t, http.StatusTooManyRequests, r.status)
	assert.Equal(t, protocol.CodeRateLimited, r.errCode(t))
	assert.NotEmpty(t, r.header.Get("Retry-After"))
}

// TestConcurrentWrongPasswordsStayWithinTheSignInLimit: each attempt
// takes its place in the limits before its password is checked, so wrong
// passwords sent at the same moment for one user name from one address
// are checked no more often than the limit allows; the rest wait.
func TestConcurrentWrongPasswordsStayWithinTheSignInLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, server.Options{})
	a := e.account(3, false)
	const n = 40
	start := make(chan struct{})
	var mu sync.Mutex
	statuses := map[int]int{}
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			r := e.request(http.MethodPost, "/api/v1/auth/signin", "", map[string]string{
				"account": a.id, "name": "owner", "password": "guess-" + strings.Repeat("x", i%10), "kind": "client"})
			mu.Lock()
			statuses[r.status]++
			mu.Unlock()
		}()
	}
	close(start)
	wg.Wait()
	t.Logf("%d wrong passwords at once: statuses %v", n, statuses)
	assert.LessOrEqual(t, statuses[http.StatusUnauthorized], broker.SignInRate,
		"%d passwords were checked for one user name and one address; the limit is %d a minute",
		statuses[http.StatusUnauthorized], broker.SignInRate)
	assert.Equal(t, n, statuses[http.StatusUnauthorized]+statuses[http.StatusTooManyRequests], "%v", statuses)
}

// TestRightPasswordsDoNotCountAgainstTheSignInLimit: a sign-in that
// succeeds gives back its places in the limits, so signing in often is
// never limited, and the failures after it still have all of theirs.
func TestRightPasswordsDoNotCountAgainstTheSignInLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, server.Options{})
	a := e.account(3, false) // one sign-in already
	for range 2 * broker.SignInRate {
		e.signIn(a.id, "owner")
	}
	for i := range broker.SignInRate {
		r := e.request(http.MethodPost, "/api/v1/auth/signin", "", map[string]string{
			"account": a.id, "name": "owner", "password": "wrong-password", "kind": "client"})
		require.Equal(t, http.StatusUnauthorized, r.status, "failure %d", i+1)
	}
	r := e.request(http.MethodPost, "/api/v1/auth/signin", "", map[string]string{
		"account": a.id, "name": "owner", "password": password, "kind": "client"})
	assert.Equal(t, http.StatusTooManyRequests, r.status)
}

// TestSignInTakesAsLongForAnUnknownUserName: a name that does not exist
// is checked against a dummy hash made at the cost real passwords are
// hashed at, so the time of a failed sign-in does not tell which user
// names exist. Not parallel: it sets the package's bcrypt cost to
// production's (and the dummy hash is made again at it).
func TestSignInTakesAsLongForAnUnknownUserName(t *testing.T) {
	broker.SetBcryptCost(bcrypt.DefaultCost)
	defer broker.SetBcryptCost(bcrypt.MinCost)
	e := newEnv(t, server.Options{})
	a := e.account(3, false) // the owner's password hashed at DefaultCost
	timed := func(i int, name string) time.Duration {
		began := time.Now()
		// a source of its own for each attempt: more samples than one
		// source's limit allows
		_, err := e.b.SignIn(e.ctx, broker.Credentials{Account: a.id, Name: name, Password: "wrong-password"},
			fmt.Sprintf("192.0.2.%d", i), broker.TokenClient, 0)
		d := time.Since(began)
		require.ErrorIs(t, err, broker.ErrUnauthorized)
		return d
	}
	exists, missing := time.Hour, time.Hour
	for i := range broker.SignInRate { // the owner's own limit
		exists = min(exists, timed(2*i, "owner"))
		missing = min(missing, timed(2*i+1, fmt.Sprintf("nobody-%d", i)))
	}
	t.Logf("wrong password of an existing user: %v; unknown user: %v", exists, missing)
	assert.Less(t, exists, 2*missing, "a wrong password of an existing user is slower: the time tells who exists")
	assert.Less(t, missing, 2*exists, "an unknown user is slower: the time tells who exists")
}

// TestBlockedUserSignInAnswersUnauthorizedWhateverThePassword: a blocked
// user's right password answers as a wrong one does, 401 unauthorized,
// and counts as a failure, so sign-in tells nothing about a blocked
// user's password. A blocked user's tokens still answer user_blocked
// (TestRevokedTokenStopsAtOnce): the page says why it was signed out.
func TestBlockedUserSignInAnswersUnauthorizedWhateverThePassword(t *testing.T) {
	t.Parallel()
	e := newEnv(t, server.Options{})
	a := e.account(3, false)
	u := a.user("leaver", protocol.RoleMember)
	e.mustDo(http.MethodPost, "/api/v1/users/"+u.ID+"/block", a.token, nil, nil)
	signIn := func(pw string) reply {
		return e.request(http.MethodPost, "/api/v1/auth/signin", "", map[string]string{
			"account": a.id, "name": "leaver", "password": pw, "kind": "client"})
	}
	wrong, right := signIn("wrong-password"), signIn(password)
	assert.Equal(t, http.StatusUnauthorized, wrong.status)
	assert.Equal(t, wrong.status, right.status, "the status tells a right password from a wrong one: %s", right.body)
	assert.Equal(t, wrong.errCode(t), right.errCode(t), "the code tells a right password from a wrong one")
	assert.Equal(t, string(wrong.body), string(right.body))
	for i := 2; i < broker.SignInRate; i++ {
		require.Equal(t, http.StatusUnauthorized, signIn(password).status)
	}
	assert.Equal(t, http.StatusTooManyRequests, signIn(password).status, "the right password counted as a failure")
}

// TestPasswordChangeRevokesTheUsersOtherTokens: a password set by an
// admin (a reset after a suspected compromise) stops every token of the
// user; a password users set themselves stops all their tokens but the
// one that set it. The old password signs in no more.
func TestPasswordChangeRevokesTheUsersOtherTokens(t *testing.T) {
	t.Parallel()
	e := newEnv(t, server.Options{})
	a := e.account(3, false)
	u := a.user("carol", protocol.RoleMember)
	a.user("dan", protocol.RoleMember)
	stolen, phone := e.signIn(a.id, "carol"), e.signIn(a.id, "carol")
	dan := e.signIn(a.id, "dan")
	e.mustDo(http.MethodPut, "/api/v1/users/"+u.ID+"/password", a.token,
		map[string]string{"password": "a-brand-new-password"}, nil)
	for _, tok := range []string{stolen, phone} {
		r := e.request(http.MethodGet, "/api/v1/me", tok, nil)
		assert.Equal(t, http.StatusUnauthorized, r.status, "a token issued before the reset still works: %s", r.body)
	}
	assert.Equal(t, http.StatusOK, e.request(http.MethodGet, "/api/v1/me", a.token, nil).status, "the admin's token works")
	assert.Equal(t, http.StatusOK, e.request(http.MethodGet, "/api/v1/me", dan, nil).status, "another user's token works")

	// carol changes her own password: the token she does it with stays
	var out struct{ Token string }
	e.mustDo(http.MethodPost, "/api/v1/auth/signin", "", map[string]string{
		"account": a.id, "name": "carol", "password": "a-brand-new-password", "kind": "client"}, &out)
	mine := out.Token
	laptop := e.request(http.MethodPost, "/api/v1/auth/signin", "", map[string]string{
		"account": a.id, "name": "carol", "password": "a-brand-new-password", "kind": "client"})
	require.Equal(t, http.StatusOK, laptop.status)
	require.NoError(t, jsonUnmarshal(laptop.body, &out))
	e.mustDo(http.MethodPut, "/api/v1/users/"+u.ID+"/password", mine,
		map[string]string{"password": "carols-own-choice"}, nil)
	assert.Equal(t, http.StatusOK, e.request(http.MethodGet, "/api/v1/me", mine, nil).status, "the caller's own token stays")
	assert.Equal(t, http.StatusUnauthorized, e.request(http.MethodGet, "/api/v1/me", out.Token, nil).status,
		"her other token stops")

	r := e.request(http.MethodPost, "/api/v1/auth/signin", "", map[string]string{
		"account": a.id, "name": "carol", "password": "a-brand-new-password", "kind": "client"})
	assert.Equal(t, http.StatusUnauthorized, r.status, "the old password signs in no more")
}

// TestSignInTokensExpire: a token is refused once its time is up.
func TestSignInTokensExpire(t *testing.T) {
	t.Parallel()
	e := newEnv(t, server.Options{})
	a := e.account(3, false)
	var out struct{ Token string }
	e.mustDo(http.MethodPost, "/api/v1/auth/signin", "", map[string]any{
		"account": a.id, "name": "owner", "password": password, "kind": "client", "ttl_sec": 60}, &out)
	require.Equal(t, http.StatusOK, e.request(http.MethodGet, "/api/v1/me", out.Token, nil).status)
	// expire it in Redis as time would
	iter := e.rc.Scan(e.ctx, 0, e.prefix+":token:*", 100).Iterator()
	n := 0
	for iter.Next(e.ctx) {
		ttl, err := e.rc.PTTL(e.ctx, iter.Val()).Result()
		require.NoError(t, err)
		if ttl > 0 && ttl <= time.Minute {
			require.NoError(t, e.rc.Del(e.ctx, iter.Val()).Err())
			n++
		}
	}
	require.NoError(t, iter.Err())
	require.Equal(t, 1, n, "one token lives a minute")
	assert.Equal(t, http.StatusUnauthorized, e.request(http.MethodGet, "/api/v1/me", out.Token, nil).status)
}

// TestSignInLimitsFollowTheAddressATrustedProxyGives: behind a proxy the
// node trusts (-trusted-proxies), the failed sign-ins of one client's
// address do not hold another client of the same proxy back; from a peer
// it does not trust, X-Forwarded-For is ignored, so a client cannot dodge
// the limit by sending one.
func TestSignInLimitsFollowTheAddressATrustedProxyGives(t *testing.T) {
	t.Parallel()
	loopback, err := clientaddr.Parse("127.0.0.1, ::1")
	require.NoError(t, err)
	for _, c := range []struct {
		name    string
		opts    server.Options
		another int // the status of another client's first attempt
	}{
		{"trusted", server.Options{TrustedProxies: loopback}, http.StatusUnauthorized},
		{"not trusted", server.Options{}, http.StatusTooManyRequests},
	} {
		e := newEnv(t, c.opts)
		a := e.account(3, false)
		attempt := wrongSignInVia(e, a.id)
		for i := range broker.SignInRate {
			require.Equal(t, http.StatusUnauthorized, attempt(i, "198.51.100.1").status, "%s: attempt %d", c.name, i+1)
		}
		assert.Equal(t, http.StatusTooManyRequests, attempt(10, "198.51.100.1").status, c.name)
		assert.Equal(t, c.another, attempt(11, "198.51.100.2").status, c.name)
	}
}

// TestSignInLimitsCountAnIPv6Slash64AsOneAddress: an IPv6 client holds a
// whole /64 and could take a new address for each guess, so the failed
// sign-ins of all addresses of one /64 count together; another /64 is
// another client.
func TestSignInLimitsCountAnIPv6Slash64AsOneAddress(t *testing.T) {
	t.Parallel()
	loopback, err := clientaddr.Parse("127.0.0.1, ::1")
	require.NoError(t, err)
	e := newEnv(t, server.Options{TrustedProxies: loopback})
	a := e.account(3, false)
	attempt := wrongSignInVia(e, a.id)
	for i := range broker.SignInRate {
		// each guess from another address of the /64
		from := fmt.Sprintf("2001:db8:1:2::%x", i+1)
		require.Equal(t, http.StatusUnauthorized, attempt(i, from).status, "attempt %d from %s", i+1, from)
	}
	assert.Equal(t, http.StatusTooManyRequests, attempt(10, "2001:db8:1:2:ffff:ffff:ffff:ffff").status,
		"yet another address of the /64")
	assert.Equal(t, http.StatusUnauthorized, attempt(11, "2001:db8:1:3::1").status, "an address of the next /64")
}

// wrongSignInVia returns a failed sign-in to account acct through a proxy
// that says the client is from; attempt i signs in as a name of its own
// ("nobody<i>"), so only the limit per address can bite.
func wrongSignInVia(e *env, acct string) func(i int, from string) reply {
	return func(i int, from string) reply {
		return e.request(http.MethodPost, "/api/v1/auth/signin", "", map[string]string{
			"account": acct, "name": fmt.Sprintf("nobody%d", i), "password": "wrong-password", "kind": "client"},
			"X-Forwarded-For", from)
	}
}
