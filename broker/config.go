// Package broker is seatbroker's domain: accounts, users, sessions and
// seats by the rules of SPEC.md, on the Redis store. The HTTP and websocket
// layers call it; it calls the store.
package broker

import (
	"errors"
	"time"
)

// Config is what a broker node needs. Every field has a default; see
// DefaultConfig and docs/configuration.md.
type Config struct {
	// Prefix of every Redis key (default "sb:v3").
	Prefix string
	// Heartbeat is how often desktop clients send a heartbeat (default 10s).
	Heartbeat time.Duration
	// Lease is how long a seat of an active or terminating session lives
	// without a heartbeat (default 30s).
	Lease time.Duration
	// Notice is the countdown before an ended session closes (default 30s).
	Notice time.Duration
	// Standby is how long a generated code waits for its remote side
	// (default 30m).
	Standby time.Duration
	// Paused is how long a paused session is kept (default 8h).
	Paused time.Duration
	// Minute is the PPU billing period (default 1m; tests shorten it).
	Minute time.Duration
	// Retention is how long ended sessions stay readable (default 10m).
	Retention time.Duration
	// RetainMax is how many ended sessions an account keeps readable at
	// most (default 100,000): past it, those that ended first go before
	// their retention runs out, so a client that opens and closes sessions
	// in a loop cannot fill Redis.
	RetainMax int
	// MaxUsers is how many users an account may have (default 50,000):
	// adding one more is refused.
	MaxUsers int
	// ReapInterval is how often the reaper looks for due timers (default
	// 200ms: well inside SPEC.md's 1 s).
	ReapInterval time.Duration
	// SweepInterval is how often the reaper refiles every account from its
	// own timers (default 10s).
	SweepInterval time.Duration
	// LowBalance are the PPU balances (minutes) that warn (default 60, 10).
	LowBalance []int
	// PageURL is the License Usage page's address, sent to denied clients
	// (default "/#usage" on the node's own address).
	PageURL string
	// CodeDigits is the length of session codes (default 9).
	CodeDigits int
	// JoinRate is how many wrong codes one source may try per minute
	// (default 10, with a burst of 10).
	JoinRate int
}

// DefaultConfig returns the defaults of SPEC.md.
func DefaultConfig() Config {
	return Config{
		Prefix:        "sb:v3",
		Heartbeat:     10 * time.Second,
		Lease:         30 * time.Second,
		Notice:        30 * time.Second,
		Standby:       30 * time.Minute,
		Paused:        8 * time.Hour,
		Minute:        time.Minute,
		Retention:     10 * time.Minute,
		RetainMax:     100_000,
		MaxUsers:      50_000,
		ReapInterval:  200 * time.Millisecond,
		SweepInterval: 10 * time.Second,
		LowBalance:    []int{60, 10},
		PageURL:       "/#usage",
		CodeDigits:    9,
		JoinRate:      10,
	}
}

// Validate says what is wrong with a config.
func (c Config) Validate() error {
	switch {
	case c.Heartbeat <= 0, c.Lease <= 0, c.Notice <= 0, c.Standby <= 0, c.Paused <= 0,
		c.Minute <= 0, c.Retention <= 0, c.ReapInterval <= 0, c.SweepInterval <= 0:
		return errors.New("config: every duration must be positive")
	case c.Heartbeat >= c.Lease:
		return errors.New("config: the heartbeat must be shorter than the lease")
	case c.CodeDigits < 6 || c.CodeDigits > 18:
		return errors.New("config: code digits must be 6 to 18")
	case c.JoinRate <= 0:
		return errors.New("config: the join rate must be positive")
	case c.MaxUsers <= 0:
		return errors.New("config: the users an account may have must be positive")
	case c.RetainMax <= 0:
		return errors.New("config: the ended sessions kept must be positive")
	}
	return nil
}
