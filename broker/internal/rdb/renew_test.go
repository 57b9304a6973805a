package rdb

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRenewAnswersEachSessionInOrderWhateverItsIDOrToken: a heartbeat
// names its sessions by id and fencing token, as the client sends them.
// Each gets its answer, in order and under the id it was named by: its
// own session renewed (with the session as stored), another user's or an
// unknown one not_found, a replaced grant stale. Ids and tokens that are
// not ours (a space in them, nothing at all) are answered as such, and
// change nothing.
func TestRenewAnswersEachSessionInOrderWhateverItsIDOrToken(t *testing.T) {
	s, c := batchStore(t, map[string]int{"ann": 0, "bob": 0})
	ctx := context.Background()
	ann := sessionOf(t, runBatch(t, s, openOp("s1", "ann", "d1"))[0])
	bob := sessionOf(t, runBatch(t, s, openOp("s2", "bob", "d1"))[0])
	ann2 := sessionOf(t, runBatch(t, s, openOp("s3", "ann", "d1"))[0]) // (shares ann's seat)
	bobBefore := c.HGet(ctx, s.keys.Sessions("acme"), "s2").Val()

	refs := []FenceRef{
		{ID: ann.ID, Fence: ann.Fence},
		{ID: bob.ID, Fence: bob.Fence},          // another user's
		{ID: "s1 s3", Fence: ann.Fence},         // a space in the id
		{ID: ann2.ID, Fence: "1 2"},             // a space in the token
		{ID: "", Fence: ""},                     // nothing at all
		{ID: "nobody", Fence: ann.Fence},        // unknown
		{ID: ann2.ID, Fence: ann.Fence},         // another session's token
		{ID: ann2.ID, Fence: ann2.Fence},        // renewed
		{ID: `s1","status":0,"x":"`, Fence: ""}, // JSON in the id
	}
	res, lease, err := s.Renew(ctx, "acme", "ann", refs)
	require.NoError(t, err)
	require.Len(t, res, len(refs))
	assert.Equal(t, probeLease(t, s), lease)
	want := []Status{StatusOK, StatusNotFound, StatusNotFound, StatusStale, StatusNotFound,
		StatusNotFound, StatusStale, StatusOK, StatusNotFound}
	for i, r := range res {
		assert.Equal(t, refs[i].ID, r.ID, "result %d", i)
		assert.Equal(t, want[i], r.Status, "result %d (%q)", i, refs[i].ID)
		if r.Status == StatusOK {
			require.NotNil(t, r.Session, "result %d", i)
			stored, err := s.Session(ctx, "acme", r.ID)
			require.NoError(t, err)
			assert.Equal(t, stored, *r.Session, "the answer is the session as stored")
			assert.Greater(t, r.Session.LeaseUntil, ann.LeaseUntil-1)
		} else {
			assert.Nil(t, r.Session, "result %d", i)
		}
	}
	assert.Equal(t, bobBefore, c.HGet(ctx, s.keys.Sessions("acme"), "s2").Val(), "another user's session is left as it was")
}

// probeLease is the store's lease, as renew answers it.
func probeLease(t *testing.T, s *Store) any {
	t.Helper()
	res, lease, err := s.Renew(context.Background(), "acme", "ann", nil)
	require.NoError(t, err)
	require.Empty(t, res)
	return lease
}
