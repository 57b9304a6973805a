package rdb

import (
	"context"
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
