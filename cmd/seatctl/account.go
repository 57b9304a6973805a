package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/seatbroker/seatbroker/broker"
	"github.com/seatbroker/seatbroker/internal/redisopen"
)

// account-create is an operator's command: it writes to Redis directly,
// because creating accounts over the API would let whoever reaches a new
// node first take it. Having the Redis URL is the operator's credential.
func init() {
	register(command{
		name:  "account-create",
		usage: "ID -redis-url URL [-redis-cluster | -redis-sentinel-master M] [-name N] [-owner NAME] [-seats N] [-ppu] (password on stdin): create an account and its owner (operators: talks to Redis)",
		run: func(ctx context.Context, args []string) error {
			return accountCreate(ctx, args, os.Stdin)
		},
	})
}

func accountCreate(ctx context.Context, args []string, stdin io.Reader) error {
	fs := flag.NewFlagSet("seatctl account-create", flag.ContinueOnError)
	redisURL := fs.String("redis-url", os.Getenv("SEATBROKER_REDIS_URL"), "the Redis the nodes use (env SEATBROKER_REDIS_URL)")
	inCluster, _ := strconv.ParseBool(os.Getenv("SEATBROKER_REDIS_CLUSTER"))
	cluster := fs.Bool("redis-cluster", inCluster, "the URL is a Redis Cluster seed, as the nodes' -redis-cluster (env SEATBROKER_REDIS_CLUSTER)")
	sentinel := fs.String("redis-sentinel-master", os.Getenv("SEATBROKER_REDIS_SENTINEL_MASTER"),
		"Sentinel master name, as the nodes' -redis-sentinel-master: the URL's hosts are sentinels (env SEATBROKER_REDIS_SENTINEL_MASTER)")
	prefix := fs.String("prefix", envOr("SEATBROKER_PREFIX", broker.DefaultConfig().Prefix), "key prefix of the nodes (env SEATBROKER_PREFIX)")
	name := fs.String("name", "", "display name (default: the id)")
	owner := fs.String("owner", "owner", "the owner's user name")
	seats := fs.Int64("seats", 5, "licenses")
	ppu := fs.Bool("ppu", false, "turn pay-per-use on")
	pos, err := parseAll(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return errors.New("give the account id: seatctl account-create ID -redis-url URL")
	}
	if *redisURL == "" {
		return errors.New("-redis-url (or SEATBROKER_REDIS_URL) is required: accounts are created in Redis by an operator")
	}
	password, err := readSecret(stdin, "owner's password: ")
	if err != nil {
		return err
	}
	rc, err := redisopen.Client(*redisURL, *cluster, *sentinel)
	if err != nil {
		return err
	}
	defer rc.Close()
	cfg := broker.DefaultConfig()
	cfg.Prefix = *prefix
	b, err := broker.New(rc, cfg, nil)
	if err != nil {
		return err
	}
	defer b.Close()
	u, err := b.Bootstrap(ctx, broker.AccountSpec{ID: pos[0], Name: *name, Seats: *seats, PPUEnabled: *ppu, OwnerName: *owner}, password)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "\n")
	fmt.Printf("account %s created; owner %s (%s)\n", pos[0], u.Name, u.ID)
	return nil
}
