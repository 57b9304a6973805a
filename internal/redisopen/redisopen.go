// Package redisopen opens the go-redis client for a Redis URL as the
// seatbroker nodes and seatctl both take it: one node, a Redis Cluster
// seed, or Sentinel.
package redisopen

import (
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Client opens a client for url: a Redis Cluster seed when cluster is set
// (more seeds as ?addr=host:port), Sentinel when sentinelMaster names the
// master (the URL's comma-separated hosts are the sentinels), else one
// node.
func Client(url string, cluster bool, sentinelMaster string) (redis.UniversalClient, error) {
	switch {
	case cluster:
		opt, err := redis.ParseClusterURL(url)
		if err != nil {
			return nil, fmt.Errorf("redis-url: %w", err)
		}
		return redis.NewClusterClient(opt), nil
	case sentinelMaster != "":
		opt, err := redis.ParseURL(strings.Replace(url, ",", "", -1))
		if err != nil {
			return nil, fmt.Errorf("redis-url: %w", err)
		}
		return redis.NewFailoverClient(&redis.FailoverOptions{
			MasterName: sentinelMaster, SentinelAddrs: SentinelAddrs(url),
			Username: opt.Username, Password: opt.Password, DB: opt.DB, TLSConfig: opt.TLSConfig,
		}), nil
	default:
		opt, err := redis.ParseURL(url)
		if err != nil {
			return nil, fmt.Errorf("redis-url: %w", err)
		}
		opt.PoolSize = max(opt.PoolSize, 64)
		return redis.NewClient(opt), nil
	}
}

// SentinelAddrs reads "redis://[auth@]h1:p1,h2:p2/db" into its hosts.
func SentinelAddrs(u string) []string {
	rest := u[strings.Index(u, "://")+3:]
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		rest = rest[at+1:]
	}
	if slash := strings.Index(rest, "/"); slash >= 0 {
		rest = rest[:slash]
	}
	var out []string
	for _, p := range strings.Split(rest, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
