package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/seatbroker/seatbroker/broker"
	"github.com/seatbroker/seatbroker/internal/clientaddr"
)

// options are the server's settings: flags, each with a SEATBROKER_*
// environment variable (the flag wins). docs/configuration.md lists them.
type options struct {
	redisURL       string
	redisCluster   bool
	sentinelMaster string
	listen         string
	demo           bool
	logLevel       string
	logJSON        bool
	allowedOrigins string
	secureCookies  bool
	wsWaiting      int
	trusted        clientaddr.Resolver
	initAccount    string
	initOwner      string
	initPassword   string
	initSeats      int64
	cfg            broker.Config
}

func parseOptions(args []string) (options, error) {
	o := options{cfg: broker.DefaultConfig()}
	fs := flag.NewFlagSet("seatbroker", flag.ContinueOnError)
	env := func(name, usage string) string { return usage + " (env " + envName(name) + ")" }
	str := func(p *string, name, def, usage string) { fs.StringVar(p, name, def, env(name, usage)) }
	dur := func(p *time.Duration, name string, usage string) { fs.DurationVar(p, name, *p, env(name, usage)) }
	boolean := func(p *bool, name string, usage string) { fs.BoolVar(p, name, false, env(name, usage)) }
	str(&o.redisURL, "redis-url", "", "Redis URL, e.g. redis://127.0.0.1:6379/0; empty: demo mode on an in-process Redis that keeps nothing")
	boolean(&o.redisCluster, "redis-cluster", "treat the Redis URL as a Redis Cluster seed (add more nodes with ?addr=host:port)")
	str(&o.sentinelMaster, "redis-sentinel-master", "", "Sentinel master name: the URL's host list are sentinels")
	str(&o.listen, "listen", "127.0.0.1:8080", "address to serve HTTP and websockets on")
	str(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	boolean(&o.logJSON, "log-json", "log JSON lines instead of text")
	var trusted string
	str(&trusted, "trusted-proxies", "", "comma-separated addresses or CIDR ranges of proxies whose X-Forwarded-For gives the client's address for the limits per address")
	str(&o.allowedOrigins, "allowed-origins", "", "comma-separated origins besides the node's own allowed to use the API and websockets from a browser")
	boolean(&o.secureCookies, "secure-cookies", "mark cookies Secure (behind HTTPS)")
	str(&o.cfg.Prefix, "prefix", o.cfg.Prefix, "prefix of every Redis key")
	str(&o.cfg.PageURL, "page-url", o.cfg.PageURL, "address of the License Usage page sent to denied clients")
	dur(&o.cfg.Heartbeat, "heartbeat", "how often desktop clients send a heartbeat")
	dur(&o.cfg.Lease, "lease", "how long a seat lives without a heartbeat")
	dur(&o.cfg.Notice, "notice", "the countdown before an ended session closes")
	dur(&o.cfg.Standby, "standby", "how long a session code waits for its remote side")
	dur(&o.cfg.Paused, "paused", "how long a paused session is kept")
	dur(&o.cfg.Minute, "ppu-minute", "the PPU billing period")
	dur(&o.cfg.Retention, "retention", "how long ended sessions stay readable")
	dur(&o.cfg.ReapInterval, "reap-interval", "how often each node fires due timers")
	var warn string
	str(&warn, "low-balance", "60,10", "PPU balances (minutes) that warn, comma-separated")
	fs.IntVar(&o.cfg.CodeDigits, "code-digits", o.cfg.CodeDigits, env("code-digits", "digits of a session code"))
	fs.IntVar(&o.cfg.JoinRate, "join-rate", o.cfg.JoinRate, env("join-rate", "wrong codes one address may try per minute"))
	fs.IntVar(&o.wsWaiting, "ws-waiting-per-address", 64, env("ws-waiting-per-address", "websocket connections one address may keep on a node before they say hello as a user or join a session"))
	fs.IntVar(&o.cfg.MaxUsers, "max-users", o.cfg.MaxUsers, env("max-users", "the most users an account may have"))
	fs.IntVar(&o.cfg.RetainMax, "retain-max", o.cfg.RetainMax, env("retain-max", "the most ended sessions an account keeps readable; past it, those that ended first go early"))
	str(&o.initAccount, "init-account", "", "first run: create this account (with -init-owner and -init-password) if it does not exist")
	str(&o.initOwner, "init-owner", "owner", "first run: the owner's user name")
	str(&o.initPassword, "init-password", "", "first run: the owner's password")
	fs.Int64Var(&o.initSeats, "init-seats", 5, env("init-seats", "first run: the account's licenses"))
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	// A flag not given takes its SEATBROKER_* variable, parsed as the flag
	// would parse it: a value the flag refuses is refused, never replaced
	// by the default.
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		v, ok := os.LookupEnv(envName(f.Name))
		if given[f.Name] || !ok {
			return
		}
		if err := fs.Set(f.Name, v); err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: %w", envName(f.Name), v, err))
		}
	})
	if err := errors.Join(errs...); err != nil {
		return o, err
	}
	if !validLogLevel(o.logLevel) {
		return o, fmt.Errorf("log-level: %q is not debug, info, warn or error", o.logLevel)
	}
	trustedProxies, err := clientaddr.Parse(trusted)
	if err != nil {
		return o, fmt.Errorf("trusted-proxies: %w", err)
	}
	o.trusted = trustedProxies
	if o.wsWaiting < 1 {
		return o, fmt.Errorf("ws-waiting-per-address: %d is not a positive number", o.wsWaiting)
	}
	o.demo = o.redisURL == ""
	o.cfg.LowBalance = nil
	for _, w := range strings.Split(warn, ",") {
		if w = strings.TrimSpace(w); w == "" {
			continue
		}
		n, err := strconv.Atoi(w)
		if err != nil || n <= 0 {
			return o, fmt.Errorf("low-balance: %q is not a positive number", w)
		}
		o.cfg.LowBalance = append(o.cfg.LowBalance, n)
	}
	return o, o.cfg.Validate()
}

func envName(flagName string) string {
	return "SEATBROKER_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// validLogLevel says whether s names one of slog's four levels.
func validLogLevel(s string) bool {
	switch strings.ToLower(s) {
	case "debug", "info", "warn", "error":
		return true
	}
	return false
}
