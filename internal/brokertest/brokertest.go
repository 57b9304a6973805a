// Package brokertest runs broker nodes for tests of the packages built on
// the broker.
package brokertest

import (
	"context"
	"log/slog"
	"os"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/seatbroker/seatbroker/broker"
)

// Start runs a broker node on client until the test ends: its reaper,
// event hub and clock check, as in production. Warnings go to stderr.
func Start(t testing.TB, client redis.UniversalClient, cfg broker.Config) *broker.Broker {
	t.Helper()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	b, err := broker.New(client, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = b.Run(ctx) }()
	t.Cleanup(func() { cancel(); b.Close(); wg.Wait() })
	return b
}
