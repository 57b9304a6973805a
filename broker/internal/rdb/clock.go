package rdb

import (
	"context"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis owns the clock (SPEC.md: "All times come from one clock, the Redis
// server's"). On a Redis Cluster each master has its own, and an account's
// times are stamped by its master's (the account code reads TIME there),
// so a time the broker works out for an account is read on that master;
// what belongs to no account (the reaper's look at the global index) is
// read on the master of that index, one fixed node. With one node or
// Sentinel there is one master and one clock.

// Now returns the clock of the node that holds the global timer index (on
// a Redis Cluster, its master; else the one Redis): the reaper's clock.
func (s *Store) Now(ctx context.Context) (time.Time, error) {
	cc, ok := s.client.(*redis.ClusterClient)
	if !ok {
		return s.client.Time(ctx).Result()
	}
	n, err := cc.MasterForKey(ctx, s.keys.DueIndex())
	if err != nil {
		return time.Time{}, err
	}
	return n.Time(ctx).Result()
}

// NodeOf names the node whose clock stamps acct's times: on a Redis
// Cluster the address of the master that holds the account's slot, from
// the client's slot map (the one it routes the account's calls by);
// "" with one node or Sentinel, where there is one clock.
func (s *Store) NodeOf(ctx context.Context, acct string) (string, error) {
	cc, ok := s.client.(*redis.ClusterClient)
	if !ok {
		return "", nil
	}
	n, err := cc.MasterForKey(ctx, s.keys.AccountHash(acct))
	if err != nil {
		return "", err
	}
	return n.Options().Addr, nil
}

// Clocks measures the clock of every master of a Redis Cluster: its
// address (as NodeOf names it) -> its clock minus this machine's, read at
// the middle of the round trip. With one node or Sentinel it measures
// nothing (Now is that clock). A master that does not answer is left out,
// and its error returned with what the others said.
func (s *Store) Clocks(ctx context.Context) (map[string]time.Duration, error) {
	cc, ok := s.client.(*redis.ClusterClient)
	if !ok {
		return nil, nil
	}
	var mu sync.Mutex
	out := map[string]time.Duration{}
	err := cc.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error {
		before := time.Now()
		t, err := n.Time(ctx).Result()
		if err != nil {
			return err
		}
		off := t.Sub(before.Add(time.Since(before) / 2))
		mu.Lock()
		out[n.Options().Addr] = off
		mu.Unlock()
		return nil
	})
	return out, err
}
