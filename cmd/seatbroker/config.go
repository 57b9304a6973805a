package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/seatbroker/seatbroker/broker"
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
	initAccount    string
	initOwner      string
	initPassword   string
	initSeats      int64
	cfg            broker.Config
}

func parseOptions(args []string) (options, error) {
	o := options{cfg: broker.DefaultConfig()}
	fs := flag.NewFlagSet("seatbroker", flag.ContinueOnError)
	str := func(p *string, name, def, usage string) {
		fs.StringVar(p, name, envOr(name, def), usage+" (env "+envName(name)+")")
	}
	dur := func(p *time.Duration, name string, usage string) {
		def := *p
		if v, ok := os.LookupEnv(envName(name)); ok {
			if d, err := time.ParseDuration(v); err == nil {
				def = d
			}
		}
		fs.DurationVar(p, name, def, usage+" (env "+envName(name)+")")
	}
	boolean := func(p *bool, name string, usage string) {
		def, _ := strconv.ParseBool(envOr(name, "false"))
		fs.BoolVar(p, name, def, usage+" (env "+envName(name)+")")
	}
	str(&o.redisURL, "redis-url", "", "Redis URL, e.g. redis://127.0.0.1:6379/0; empty: demo mode on an in-process Redis that keeps nothing")
	boolean(&o.redisCluster, "redis-cluster", "treat the Redis URL as a Redis Cluster seed (add more nodes with ?addr=host:port)")
	str(&o.sentinelMaster, "redis-sentinel-master", "", "Sentinel master name: the URL's host list are sentinels")
	str(&o.listen, "listen", "127.0.0.1:8080", "address to serve HTTP and websockets on")
	str(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	boolean(&o.logJSON, "log-json", "log JSON lines instead of text")
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
	fs.IntVar(&o.cfg.CodeDigits, "code-digits", envInt("code-digits", o.cfg.CodeDigits), "digits of a session code (env SEATBROKER_CODE_DIGITS)")
	fs.IntVar(&o.cfg.JoinRate, "join-rate", envInt("join-rate", o.cfg.JoinRate), "wrong codes one address may try per minute (env SEATBROKER_JOIN_RATE)")
	str(&o.initAccount, "init-account", "", "first run: create this account (with -init-owner and -init-password) if it does not exist")
	str(&o.initOwner, "init-owner", "owner", "first run: the owner's user name")
	str(&o.initPassword, "init-password", "", "first run: the owner's password")
	fs.Int64Var(&o.initSeats, "init-seats", int64(envInt("init-seats", 5)), "first run: the account's licenses (env SEATBROKER_INIT_SEATS)")
	if err := fs.Parse(args); err != nil {
		return o, err
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

func envOr(flagName, def string) string {
	if v, ok := os.LookupEnv(envName(flagName)); ok {
		return v
	}
	return def
}

func envInt(flagName string, def int) int {
	if n, err := strconv.Atoi(envOr(flagName, "")); err == nil {
		return n
	}
	return def
}
