package rdb

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

// The seats hash keeps a seat as "P|U <user> <session>..." and a user's
// seat set as seat keys separated by newlines (lib.lua). These tests take
// sessions off a shared seat, and seats off a user's set, from the front,
// the middle and the end, one call each, and read what the store kept.

func TestSeatLosesSessionsFromAnyPlace(t *testing.T) {
	s, _ := batchStore(t, map[string]int{"ann": 0})
	ctx := context.Background()
	for _, sid := range []string{"s1", "s2", "s3", "s4"} {
		sessionOf(t, runBatch(t, s, openOp(sid, "ann", "d1"))[0])
	}
	seatSIDs := func() []string {
		seats, err := s.Seats(ctx, "acme")
		require.NoError(t, err)
		if len(seats) == 0 {
			return nil
		}
		require.Len(t, seats, 1, "four sessions of one user and device share one seat")
		require.Equal(t, "ann|d1", seats[0].Key)
		require.Equal(t, "prepaid", seats[0].Kind)
		require.Equal(t, "ann", seats[0].User)
		return seats[0].SIDs
	}
	require.Equal(t, []string{"s1", "s2", "s3", "s4"}, seatSIDs())
	for _, c := range []struct {
		close string
		left  []string
	}{
		{"s2", []string{"s1", "s3", "s4"}}, // the middle
		{"s4", []string{"s1", "s3"}},       // the end
		{"s1", []string{"s3"}},             // the front
		{"s3", nil},                        // the last: the seat is free
	} {
		sessionOf(t, runBatch(t, s, closeOp(c.close, "ann"))[0])
		require.Equal(t, c.left, seatSIDs(), "after closing %s", c.close)
	}
	acct, err := s.Account(ctx, "acme")
	require.NoError(t, err)
	require.Equal(t, "0", acct["used"])
	counts, err := s.UserSeatCounts(ctx, "acme", []string{"ann"})
	require.NoError(t, err)
	require.Empty(t, counts, "a user with no seat has no seat set")
}

func TestUserSeatSetLosesSeatsFromAnyPlace(t *testing.T) {
	s, c := batchStore(t, map[string]int{"ann": 3})
	ctx := context.Background()
	setSeats(t, s, 10)
	for i, dev := range []string{"d1", "d2", "d3"} {
		sessionOf(t, runBatch(t, s, openOp("s"+dev, "ann", dev))[0])
		counts, err := s.UserSeatCounts(ctx, "acme", []string{"ann"})
		require.NoError(t, err)
		require.Equal(t, map[string]int{"ann": i + 1}, counts)
	}
	// max_seats 3 counts the set: a fourth device is refused
	r := runBatch(t, s, openOp("sd4", "ann", "d4"))[0]
	require.NoError(t, r.err)
	require.Equal(t, StatusUserLimit, r.res.Status)
	set := func() []string {
		raw, err := c.HGet(ctx, s.keys.Seats("acme"), "@ann").Result()
		if err != nil {
			return nil
		}
		return ParseUserSeats(raw)
	}
	require.Equal(t, []string{"ann|d1", "ann|d2", "ann|d3"}, set())
	sessionOf(t, runBatch(t, s, closeOp("sd2", "ann"))[0])
	require.Equal(t, []string{"ann|d1", "ann|d3"}, set())
	sessionOf(t, runBatch(t, s, closeOp("sd1", "ann"))[0])
	require.Equal(t, []string{"ann|d3"}, set())
	// a seat freed makes room again: the set counts 2 with d5
	sessionOf(t, runBatch(t, s, openOp("sd5", "ann", "d5"))[0])
	require.Equal(t, []string{"ann|d3", "ann|d5"}, set())
	sessionOf(t, runBatch(t, s, closeOp("sd5", "ann"))[0])
	sessionOf(t, runBatch(t, s, closeOp("sd3", "ann"))[0])
	require.Nil(t, set())
}

func TestParseSeatRejectsWhatTheStoreNeverWrites(t *testing.T) {
	for _, raw := range []string{"", "P", "P ann", "X ann s1", `{"kind":"prepaid"}`} {
		_, err := ParseSeat("k", raw)
		require.ErrorIs(t, err, ErrUnexpectedReply, raw)
	}
	h, err := ParseSeat("ann|d1", "U ann s1 s2")
	require.NoError(t, err)
	require.Equal(t, SeatHolder{Key: "ann|d1", Kind: "ppu", User: "ann", SIDs: []string{"s1", "s2"}}, h)
}

// Session ids that start alike are told apart: closing s1 leaves s10 and
// s11 on the seat they share.
func TestSeatTellsApartIDsThatStartAlike(t *testing.T) {
	s, _ := batchStore(t, map[string]int{"ann": 0})
	ctx := context.Background()
	sids := func() []string {
		seats, err := s.Seats(ctx, "acme")
		require.NoError(t, err)
		require.Len(t, seats, 1)
		return seats[0].SIDs
	}
	for _, sid := range []string{"s10", "s1", "s11"} {
		sessionOf(t, runBatch(t, s, openOp(sid, "ann", "d1"))[0])
	}
	require.Equal(t, []string{"s10", "s1", "s11"}, sids())
	sessionOf(t, runBatch(t, s, closeOp("s1", "ann"))[0])
	require.Equal(t, []string{"s10", "s11"}, sids())
}
