// Command demoload puts a small, lifelike load on a seatbroker node for
// screenshots and demos: it sets up the account over the REST API (users,
// pay-per-use), opens sessions as the desktop and remote clients of alice,
// bob and admin would, and ends one of them from the admin's side so that
// the page shows a countdown.
//
// Desktop and remote clients speak to the broker through its websocket
// layer; until that is in every build, demoload acts for them as a second
// broker node on the node's Redis (the same store actions a client's node
// takes), which is why it needs -redis-url.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seatbroker/seatbroker/broker"
	"github.com/seatbroker/seatbroker/broker/protocol"
	"github.com/seatbroker/seatbroker/internal/restclient"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "demoload:", err)
		os.Exit(1)
	}
}

type options struct {
	url, redisURL, prefix, account, owner, password string
	notice, lease                                   time.Duration
}

func run() error {
	var o options
	flag.StringVar(&o.url, "url", "http://127.0.0.1:8080", "the node's address")
	flag.StringVar(&o.redisURL, "redis-url", "", "the node's Redis (required)")
	flag.StringVar(&o.prefix, "prefix", broker.DefaultConfig().Prefix, "the node's key prefix")
	flag.StringVar(&o.account, "account", "demo", "the account")
	flag.StringVar(&o.owner, "owner", "owner", "the owner's user name")
	flag.StringVar(&o.password, "password", "demo-password", "the owner's password, also given to the users made")
	flag.DurationVar(&o.notice, "notice", 5*time.Minute, "the ending countdown of the session ended for the demo")
	flag.DurationVar(&o.lease, "lease", 30*time.Minute, "how long the demo sessions live without a heartbeat")
	flag.Parse()
	if o.redisURL == "" {
		return errors.New("-redis-url is required")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	owner := newRest(o.url)
	if err := owner.signIn(ctx, o.account, o.owner, o.password); err != nil {
		return err
	}
	if err := owner.call(ctx, "PATCH", "/api/v1/settings", map[string]any{"name": "Demo Company", "seats": 3, "ppu_enabled": true}, nil); err != nil {
		return err
	}
	if err := owner.call(ctx, "POST", "/api/v1/ppu/topup", map[string]any{"minutes": 120, "key": "demoload-seed", "note": "demo balance"}, nil); err != nil {
		return err
	}
	ids := map[string]string{}
	var me struct{ User protocol.User }
	if err := owner.call(ctx, "GET", "/api/v1/me", nil, &me); err != nil {
		return err
	}
	ids[o.owner] = me.User.ID
	for _, u := range []struct{ name, role string }{{"admin", "admin"}, {"alice", "member"}, {"bob", "member"}} {
		var nu protocol.User
		err := owner.call(ctx, "POST", "/api/v1/users", map[string]any{"name": u.name, "role": u.role, "password": o.password}, &nu)
		if err != nil {
			return fmt.Errorf("add %s: %w", u.name, err)
		}
		ids[u.name] = nu.ID
	}

	// The clients' node: on the node's Redis, with the demo's durations.
	rc := redis.NewClient(mustParse(o.redisURL))
	defer rc.Close()
	cfg := broker.DefaultConfig()
	cfg.Prefix, cfg.Notice, cfg.Lease, cfg.Heartbeat = o.prefix, o.notice, o.lease, o.lease/3
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	b, err := broker.New(rc, cfg, log)
	if err != nil {
		return err
	}
	defer b.Close()
	open := func(user, device string, code bool) (protocol.Grant, error) {
		g, err := b.Open(ctx, broker.OpenRequest{Account: o.account, UserID: ids[user], DeviceID: device,
			DeviceName: device + ".corp.example", WithCode: code})
		if err != nil {
			return g, fmt.Errorf("open %s on %s: %w", user, device, err)
		}
		fmt.Printf("%-6s %-14s %-12s %s\n", user, device, g.Session.State, g.Session.Kind)
		return g, nil
	}
	// alice works at her desk; bob's customer joins his code; admin works;
	// all three licenses are in use, so alice's laptop runs on pay-per-use.
	if _, err := open("alice", "alice-desktop", false); err != nil {
		return err
	}
	bob, err := open("bob", "bob-desktop", true)
	if err != nil {
		return err
	}
	if _, _, err := b.Join(ctx, bob.Session.Code, "198.51.100.23"); err != nil {
		return fmt.Errorf("join bob's code: %w", err)
	}
	if _, err := open("admin", "admin-pc", false); err != nil {
		return err
	}
	if _, err := open("alice", "alice-laptop", false); err != nil {
		return err
	}
	if _, err := open("bob", "bob-desktop", true); err != nil { // a code waiting for its customer
		return err
	}
	paused, err := open("alice", "alice-desktop", false)
	if err != nil {
		return err
	}
	if _, err := b.Pause(ctx, o.account, ids["alice"], paused.Session.ID, paused.Fence); err != nil {
		return err
	}

	// The admin ends bob's running session from the page's API: it counts
	// down for everyone in it.
	admin := newRest(o.url)
	if err := admin.signIn(ctx, o.account, "admin", o.password); err != nil {
		return err
	}
	var ended struct{ Results []protocol.EndResult }
	if err := admin.call(ctx, "POST", "/api/v1/sessions/end", map[string]any{"session_ids": []string{bob.Session.ID}}, &ended); err != nil {
		return err
	}
	if len(ended.Results) != 1 || !ended.Results[0].OK {
		return fmt.Errorf("ending bob's session: %+v", ended.Results)
	}
	fmt.Printf("admin ended bob's session: terminating, %d s left\n", ended.Results[0].Session.SecondsLeft)
	return nil
}

func mustParse(u string) *redis.Options {
	opt, err := redis.ParseURL(u)
	if err != nil {
		fmt.Fprintln(os.Stderr, "demoload: redis-url:", err)
		os.Exit(2)
	}
	return opt
}

// rest is a signed-in client of the REST API (a bearer token).
type rest struct {
	restclient.Client
}

func newRest(base string) *rest { return &rest{restclient.Client{Base: base}} }

func (r *rest) signIn(ctx context.Context, acct, name, password string) error {
	var out struct{ Token string }
	err := r.call(ctx, "POST", "/api/v1/auth/signin", map[string]any{"account": acct, "name": name, "password": password, "kind": "client"}, &out)
	if err != nil {
		return fmt.Errorf("sign in as %s: %w", name, err)
	}
	r.Token = out.Token
	return nil
}

func (r *rest) call(ctx context.Context, method, path string, body, out any) error {
	if err := r.Do(ctx, method, path, body, out); err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	return nil
}
