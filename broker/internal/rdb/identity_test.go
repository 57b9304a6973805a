package rdb

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestFilingATokenDropsTheAccountsExpiredOnes: an account's list of
// tokens (what "sign out everywhere" reads) holds its live tokens: each
// sign-in would otherwise add one for ever. Filing a token drops the
// expired ones; a live one stays, and a revoked one leaves the list and
// its expiries.
func TestFilingATokenDropsTheAccountsExpiredOnes(t *testing.T) {
	s, c := batchStoreWith(t, nil, time.Minute)
	ctx := context.Background()
	now := time.Now().UnixMilli()
	put := func(hash string, ttl time.Duration) {
		t.Helper()
		over, err := s.PutToken(ctx, hash, TokenRec{Account: "acme", User: "owner", Kind: "client",
			Expires: now + ttl.Milliseconds(), Created: now}, ttl, 100)
		require.NoError(t, err)
		require.Empty(t, over)
	}
	put("old1", 100*time.Millisecond)
	put("old2", 100*time.Millisecond)
	put("live", time.Hour)
	time.Sleep(300 * time.Millisecond)
	put("new", time.Hour)

	toks, err := c.HKeys(ctx, s.keys.Tokens("acme")).Result()
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"live", "new"}, toks, "the expired tokens left the list")
	assert.Equal(t, int64(2), c.ZCard(ctx, s.keys.TokenExpiry("acme")).Val())

	require.NoError(t, s.DeleteToken(ctx, "acme", "owner", "live"))
	toks, err = c.HKeys(ctx, s.keys.Tokens("acme")).Result()
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"new"}, toks)
	mine, err := s.UserTokens(ctx, "acme", "owner")
	require.NoError(t, err)
	assert.Equal(t, []string{"new"}, mine, "the user's own list follows the account's")
	assert.Equal(t, int64(1), c.ZCard(ctx, s.keys.TokenExpiry("acme")).Val())
	_, err = s.Token(ctx, "live")
	assert.Error(t, err, "a revoked token does not work")
}

// TestATokenRevokedWhileItIsFiledNeverWorks: "sign out everywhere" (or a
// new password) reads the user's token list and deletes each token's
// global lookup, then unlists it. If it runs after a sign-in listed its
// new token but before it set the lookup, the lookup comes after the
// revocation: without a check the token would work until it expired,
// listed nowhere a later "sign out everywhere" reads.
func TestATokenRevokedWhileItIsFiledNeverWorks(t *testing.T) {
	s, _ := batchStoreWith(t, nil, time.Minute)
	ctx := context.Background()
	now := time.Now().UnixMilli()
	rec := TokenRec{Account: "acme", User: "owner", Kind: "client", Expires: now + time.Hour.Milliseconds(), Created: now}
	revoked := 0
	s.tokenListed = func() {
		// what revokeTokens (broker/identity.go) does
		hashes, err := s.UserTokens(ctx, "acme", "owner")
		require.NoError(t, err)
		for _, h := range hashes {
			require.NoError(t, s.DeleteToken(ctx, "acme", "owner", h))
			revoked++
		}
	}
	_, err := s.PutToken(ctx, "raced", rec, time.Hour, 100)
	require.ErrorIs(t, err, ErrTokenRevoked)
	require.Equal(t, 1, revoked, "the revocation saw the listed token")
	_, err = s.Token(ctx, "raced")
	assert.Error(t, err, "a token revoked as it was filed does not work")

	// without a revocation in between, a token is filed and works
	s.tokenListed = nil
	_, err = s.PutToken(ctx, "calm", rec, time.Hour, 100)
	require.NoError(t, err)
	got, err := s.Token(ctx, "calm")
	require.NoError(t, err)
	assert.Equal(t, "owner", got.User)
}

// TestATokenRevokedWhileItsLookupIsSetNeverWorks: a revocation deletes a
// token's lookup, then unlists it, in two round trips. If the token is
// being filed, the lookup can be set between the two (after the
// revocation deleted it) and the filing's check can run before the
// unlisting, while the token is still listed: the check passes, the
// revocation then unlists the token, and it would work until it expired,
// listed nowhere a later "sign out everywhere" reads.
func TestATokenRevokedWhileItsLookupIsSetNeverWorks(t *testing.T) {
	s, _ := batchStoreWith(t, nil, time.Minute)
	ctx := context.Background()
	now := time.Now().UnixMilli()
	rec := TokenRec{Account: "acme", User: "owner", Kind: "client", Expires: now + time.Hour.Milliseconds(), Created: now}
	lookupDeleted, unlist := make(chan struct{}), make(chan struct{})
	var once sync.Once
	s.tokenUnlisting = func() {
		once.Do(func() { close(lookupDeleted) })
		<-unlist // the filing sets the lookup and checks the lists now
	}
	revoked := make(chan error, 1)
	s.tokenListed = func() {
		// what revokeTokens (broker/identity.go) does, up to the unlisting
		go func() {
			hashes, err := s.UserTokens(ctx, "acme", "owner")
			for _, h := range hashes {
				if err == nil {
					err = s.DeleteToken(ctx, "acme", "owner", h)
				}
			}
			if len(hashes) != 1 {
				err = fmt.Errorf("the revocation saw %d tokens, not the one listed", len(hashes))
			}
			revoked <- err
		}()
		<-lookupDeleted
	}
	_, err := s.PutToken(ctx, "raced", rec, time.Hour, 100)
	close(unlist)
	require.NoError(t, <-revoked)
	if err != nil {
		require.ErrorIs(t, err, ErrTokenRevoked)
	}
	_, err = s.Token(ctx, "raced")
	assert.Error(t, err, "a token revoked as it was filed does not work")
	mine, err := s.UserTokens(ctx, "acme", "owner")
	require.NoError(t, err)
	assert.Empty(t, mine)
}
