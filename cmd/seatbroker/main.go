// Command seatbroker is a seatbroker node: it serves the REST API, the
// websocket endpoint for desktop and remote clients, and the License Usage
// page. Nodes share one Redis; run as many as you like.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/seatbroker/seatbroker/broker"
	"github.com/seatbroker/seatbroker/broker/server"
	"github.com/seatbroker/seatbroker/internal/miniclock"
	"github.com/seatbroker/seatbroker/internal/redisopen"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "seatbroker:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	o, err := parseOptions(args)
	if errors.Is(err, flag.ErrHelp) {
		return nil // -h: the flags were printed, as asked
	}
	if err != nil {
		return err
	}
	log := newLogger(o)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	client, closeRedis, err := openRedis(o, log)
	if err != nil {
		return err
	}
	defer closeRedis()

	b, err := broker.New(client, o.cfg, log)
	if err != nil {
		return err
	}
	if err := firstRun(ctx, b, o, log); err != nil {
		return err
	}

	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return err
	}
	node := server.New(b, server.Options{Log: log, AllowedOrigins: splitList(o.allowedOrigins), SecureCookies: o.secureCookies,
		WSWaitingPerAddress: o.wsWaiting, TrustedProxies: o.trusted})
	srv := server.HTTPServer(node, server.DefaultTimeouts())
	// Shutdown waits for every request, and the page's event streams never
	// end by themselves: the node's goodbyes start with it, not after it
	srv.RegisterOnShutdown(node.Close)
	runCtx, cancelRun := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = b.Run(runCtx) }()
	serveErr := make(chan error, 1)
	go func() {
		defer wg.Done()
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			serveErr <- err
		}
	}()
	log.Info("seatbroker serving", "addr", "http://"+ln.Addr().String(), "page", "http://"+ln.Addr().String()+"/")

	select {
	case <-ctx.Done():
	case err = <-serveErr:
	}
	// Shutdown order: stop taking requests and let those in flight finish
	// while saying goodbye to websocket clients (they reconnect to another
	// node and keep their sessions) and ending the page's event streams
	// (node.Close, run by Shutdown and waited for here), then stop the
	// background loops (reaper, hub), then the store and Redis (deferred).
	log.Info("seatbroker stopping")
	shutCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutCtx)
	node.Close()
	cancelRun()
	b.Close()
	wg.Wait()
	log.Info("seatbroker stopped")
	return err
}

func newLogger(o options) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(o.logLevel))
	hopts := &slog.HandlerOptions{Level: level}
	if o.logJSON {
		return slog.New(slog.NewJSONHandler(os.Stderr, hopts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, hopts))
}

// openRedis connects to the configured Redis: one node, Sentinel or
// Cluster through go-redis's universal client; with no URL, an in-process
// miniredis (demo mode, keeps nothing).
func openRedis(o options, log *slog.Logger) (redis.UniversalClient, func(), error) {
	if o.demo {
		m := miniredis.NewMiniRedis()
		if err := m.StartAddr("127.0.0.1:0"); err != nil {
			return nil, nil, err
		}
		// (miniredis counts TTLs down only when told to)
		stopClock := miniclock.Follow(m, 100*time.Millisecond)
		log.Warn("DEMO MODE: no Redis configured (set SEATBROKER_REDIS_URL or -redis-url); " +
			"serving on an in-process Redis that keeps NOTHING across restarts")
		c := redis.NewClient(&redis.Options{Addr: m.Addr()})
		return c, func() { _ = c.Close(); stopClock(); m.Close() }, nil
	}
	c, err := redisopen.Client(o.redisURL, o.redisCluster, o.sentinelMaster)
	if err != nil {
		return nil, nil, err
	}
	log.Info("redis", "url", redactURL(o.redisURL), "cluster", o.redisCluster, "sentinel", o.sentinelMaster)
	return c, func() { _ = c.Close() }, nil
}

func redactURL(u string) string {
	if at := strings.LastIndex(u, "@"); at >= 0 {
		if i := strings.Index(u, "://"); i >= 0 && i < at {
			return u[:i+3] + "***@" + u[at+1:]
		}
	}
	return u
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
