package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"

	"github.com/seatbroker/seatbroker/broker"
	"github.com/seatbroker/seatbroker/broker/protocol"
)

// The admin commands talk to the REST API (docs/api.md) with a client
// token. Accounts themselves are created by the server on first run
// (seatbroker -init-account), never over the API: see README.md.
func init() {
	register(command{"login", "-account A -name N [-password P | stdin] [-ttl 24h]: sign in and print a client token", cmdLogin})
	register(command{"logout", "revoke the token in use", cmdLogout})
	register(command{"overview", "the account's licenses: seats, in use, free, over, PPU", cmdOverview})
	register(command{"settings", "the account's settings", cmdSettings})
	register(command{"seats", "N: set the account's licenses", cmdSeats})
	register(command{"permissions", "[-user U] -view S -control S: set the account's defaults, or a user's override (\"\" follows the account)", cmdPermissions})
	register(command{"users", "list the users", cmdUsers})
	register(command{"user-add", "NAME [-role member|admin] [-password P] [-max-seats N|none] [-view S] [-control S]: add a user", cmdUserAdd})
	register(command{"user-set", "USER [-name N] [-role R] [-max-seats N|none]: change a user", cmdUserSet})
	register(command{"block", "USER: block a user (its sessions end with the notice)", cmdBlock(true)})
	register(command{"unblock", "USER: unblock a user", cmdBlock(false)})
	register(command{"topup", "MINUTES [-key K] [-note T]: add pay-per-use minutes", cmdTopUp})
	register(command{"ledger", "[-offset N] [-limit N]: the pay-per-use ledger", cmdLedger})
	register(command{"sessions", "[-state a,b] [-user U] [-limit N]: list the sessions you may see", cmdSessions})
	register(command{"end", "SESSION_ID...: end sessions (End Selected Sessions)", cmdEnd})
}

// setup parses the common flags, the command's own, and its arguments.
func setup(name string, args []string, own func(*flag.FlagSet)) (*rest, []string, error) {
	fs := flag.NewFlagSet("seatctl "+name, flag.ContinueOnError)
	client := restFlags(fs)
	if own != nil {
		own(fs)
	}
	rest, err := parseAll(fs, args)
	if err != nil {
		return nil, nil, err
	}
	return client(), rest, nil
}

// setupNoArgs is setup for a command that takes flags only: an argument
// is refused, not ignored.
func setupNoArgs(name string, args []string, own func(*flag.FlagSet)) (*rest, error) {
	c, rest, err := setup(name, args, own)
	if err != nil {
		return nil, err
	}
	if len(rest) != 0 {
		return nil, usageErr("seatctl %s takes no arguments, got %q", name, rest[0])
	}
	return c, nil
}

func table() *tabwriter.Writer { return tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0) }

func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func cmdLogin(ctx context.Context, args []string) error {
	var acct, name, password string
	var ttl time.Duration
	var passwordFromEnv func()
	c, err := setupNoArgs("login", args, func(fs *flag.FlagSet) {
		fs.StringVar(&acct, "account", os.Getenv("SEATBROKER_ACCOUNT"), "the account (env SEATBROKER_ACCOUNT)")
		fs.StringVar(&name, "name", os.Getenv("SEATBROKER_USER"), "the user name (env SEATBROKER_USER)")
		fs.StringVar(&password, "password", "", "the password (env SEATBROKER_PASSWORD; else read from stdin)")
		fs.DurationVar(&ttl, "ttl", 24*time.Hour, "how long the token lives (a minute to a year)")
		passwordFromEnv = func() { secretFromEnv(fs, "password", "SEATBROKER_PASSWORD", &password) }
	})
	if err != nil {
		return err
	}
	passwordFromEnv()
	if acct == "" || name == "" {
		return usageErr("seatctl login -account A -name N")
	}
	// the API takes whole seconds and reads 0 as its default (a day)
	if ttl < time.Minute || ttl > broker.MaxTokenTTL {
		return usageErr("-ttl %s: a token lives a minute to a year", ttl)
	}
	if password == "" {
		if password, err = readSecret(os.Stdin, "password: "); err != nil {
			return err
		}
	}
	if password == "" {
		return usageErr("seatctl login: no password given (-password, SEATBROKER_PASSWORD or stdin)")
	}
	var out struct {
		Token   string        `json:"token"`
		Expires time.Time     `json:"expires"`
		User    protocol.User `json:"user"`
	}
	// c.Do, not c.do: a failed sign-in is not a missing token
	err = c.Do(ctx, http.MethodPost, "/auth/signin", map[string]any{
		"account": acct, "name": name, "password": password, "kind": "client", "ttl_sec": int64(ttl / time.Second)}, &out)
	var ae *apiError
	if errors.As(err, &ae) && ae.Detail.Code == protocol.CodeUnauthorized {
		return errors.New("wrong account, name or password")
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "signed in as %s (%s) until %s; use: export SEATBROKER_TOKEN=<the token>\n",
		out.User.Name, out.User.Role, out.Expires.Local().Format(time.RFC3339))
	fmt.Println(out.Token)
	return nil
}

func cmdLogout(ctx context.Context, args []string) error {
	c, err := setupNoArgs("logout", args, nil)
	if err != nil {
		return err
	}
	return c.do(ctx, http.MethodPost, "/auth/signout", nil, nil)
}

func cmdOverview(ctx context.Context, args []string) error {
	c, err := setupNoArgs("overview", args, nil)
	if err != nil {
		return err
	}
	var o protocol.Overview
	if err := c.do(ctx, http.MethodGet, "/overview", nil, &o); err != nil {
		return err
	}
	w := table()
	fmt.Fprintf(w, "account\t%s (%s)\n", o.Account, o.Name)
	fmt.Fprintf(w, "licenses\t%d\nin use\t%d\nfree\t%d\nover the limit by\t%d\n", o.Seats, o.InUse, o.Free, o.Over)
	fmt.Fprintf(w, "pay-per-use\t%s\nPPU balance\t%d min\nPPU sessions\t%d\n", onOff(o.PPUEnabled), o.PPUBalance, o.PPUSessions)
	if o.Degraded {
		fmt.Fprintln(w, "WARNING\tthe license store is unreachable: last known numbers")
	}
	return w.Flush()
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func cmdSettings(ctx context.Context, args []string) error {
	c, err := setupNoArgs("settings", args, nil)
	if err != nil {
		return err
	}
	var s protocol.Settings
	if err := c.do(ctx, http.MethodGet, "/settings", nil, &s); err != nil {
		return err
	}
	return printSettings(s)
}

func printSettings(s protocol.Settings) error {
	w := table()
	fmt.Fprintf(w, "name\t%s\nlicenses\t%d\ncounting mode\t%s\npay-per-use\t%s\npromotion\t%s\n", s.Name, s.Seats, s.Mode, onOff(s.PPUEnabled), onOff(s.Promote))
	fmt.Fprintf(w, "view (default)\t%s\ncontrol (default)\t%s\n", s.View, s.Control)
	// one unit for the three: Go's durations (30s, 30m0s, 8h0m0s), as the flags take them
	sec := func(n int64) time.Duration { return time.Duration(n) * time.Second }
	fmt.Fprintf(w, "notice\t%s\nstandby\t%s\npaused\t%s\n", sec(s.NoticeSec), sec(s.StandbySec), sec(s.PausedSec))
	return w.Flush()
}

func cmdSeats(ctx context.Context, args []string) error {
	c, rest, err := setup("seats", args, nil)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return usageErr("seatctl seats N")
	}
	n, err := strconv.ParseInt(rest[0], 10, 64)
	if err != nil {
		return usageErr("seats: %q is not a number", rest[0])
	}
	var s protocol.Settings
	if err := c.do(ctx, http.MethodPatch, "/settings", map[string]int64{"seats": n}, &s); err != nil {
		return err
	}
	return printSettings(s)
}

func cmdPermissions(ctx context.Context, args []string) error {
	var user, view, control string
	var setView, setControl bool
	c, err := setupNoArgs("permissions", args, func(fs *flag.FlagSet) {
		fs.StringVar(&user, "user", "", "a user (name or id): set its override instead of the account's defaults")
		fs.Func("view", "none, own or domain (\"\" follows the account, for a user)", func(s string) error { view, setView = s, true; return nil })
		fs.Func("control", "none, own or domain (\"\" follows the account, for a user)", func(s string) error { control, setControl = s, true; return nil })
	})
	if err != nil {
		return err
	}
	if !setView && !setControl {
		return usageErr("seatctl permissions [-user U] -view S -control S")
	}
	body := map[string]string{}
	if setView {
		body["view"] = view
	}
	if setControl {
		body["control"] = control
	}
	if user == "" {
		var s protocol.Settings
		if err := c.do(ctx, http.MethodPatch, "/settings", body, &s); err != nil {
			return err
		}
		return printSettings(s)
	}
	id, err := c.userID(ctx, user)
	if err != nil {
		return err
	}
	var u protocol.User
	if err := c.do(ctx, http.MethodPatch, "/users/"+id, body, &u); err != nil {
		return err
	}
	return printUsers([]protocol.User{u})
}

// userID finds a user by id or name. The list of users is for admins; a
// member may still name itself, found by GET /me.
func (c *rest) userID(ctx context.Context, user string) (string, error) {
	var out struct {
		Users []protocol.User `json:"users"`
	}
	err := c.do(ctx, http.MethodGet, "/users", nil, &out)
	var ae *apiError
	if errors.As(err, &ae) && ae.Detail.Code == protocol.CodeForbidden {
		var me struct {
			User protocol.User `json:"user"`
		}
		if merr := c.do(ctx, http.MethodGet, "/me", nil, &me); merr != nil {
			return "", merr
		}
		if me.User.ID == user || strings.EqualFold(me.User.Name, user) {
			return me.User.ID, nil
		}
		return "", err
	}
	if err != nil {
		return "", err
	}
	for _, u := range out.Users {
		if u.ID == user || strings.EqualFold(u.Name, user) {
			return u.ID, nil
		}
	}
	return "", fmt.Errorf("no user %q", user)
}

func cmdUsers(ctx context.Context, args []string) error {
	var asJSON bool
	c, err := setupNoArgs("users", args, func(fs *flag.FlagSet) { fs.BoolVar(&asJSON, "json", false, "print JSON") })
	if err != nil {
		return err
	}
	var out struct {
		Users []protocol.User `json:"users"`
	}
	if err := c.do(ctx, http.MethodGet, "/users", nil, &out); err != nil {
		return err
	}
	if asJSON {
		return printJSON(out.Users)
	}
	return printUsers(out.Users)
}

func printUsers(us []protocol.User) error {
	w := table()
	fmt.Fprintln(w, "ID\tNAME\tROLE\tSTATUS\tMAX SEATS\tHELD\tVIEW\tCONTROL")
	for _, u := range us {
		limit := "-"
		if u.MaxSeats != nil {
			limit = strconv.Itoa(*u.MaxSeats)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", u.ID, u.Name, u.Role, u.Status, limit, u.SeatsHeld,
			scope(u.EffectiveView, u.View), scope(u.EffectiveControl, u.Control))
	}
	return w.Flush()
}

// scope shows an effective permission, marking a user's own override.
func scope(effective, override string) string {
	if override != "" {
		return effective + "*"
	}
	return effective
}

func cmdUserAdd(ctx context.Context, args []string) error {
	var role, password, view, control string
	var maxSeats *int // nil: no limit
	c, rest, err := setup("user-add", args, func(fs *flag.FlagSet) {
		fs.StringVar(&role, "role", "member", "member or admin")
		fs.StringVar(&password, "password", "", "the user's password (8 to 72 bytes)")
		fs.Func("max-seats", "the most licenses the user may hold, or none (default none: no limit)", func(s string) error {
			if s == "none" {
				maxSeats = nil
				return nil
			}
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 {
				return errors.New("a number from 0, or none")
			}
			maxSeats = &n
			return nil
		})
		fs.StringVar(&view, "view", "", "view override (default: follow the account)")
		fs.StringVar(&control, "control", "", "control override (default: follow the account)")
	})
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return usageErr("seatctl user-add NAME [flags]")
	}
	body := map[string]any{"name": rest[0], "role": role, "password": password, "view": view, "control": control}
	if maxSeats != nil {
		body["max_seats"] = *maxSeats
	}
	var u protocol.User
	if err := c.do(ctx, http.MethodPost, "/users", body, &u); err != nil {
		return err
	}
	return printUsers([]protocol.User{u})
}

func cmdUserSet(ctx context.Context, args []string) error {
	body := map[string]any{}
	c, rest, err := setup("user-set", args, func(fs *flag.FlagSet) {
		fs.Func("name", "a new name", func(s string) error { body["name"] = s; return nil })
		fs.Func("role", "member or admin", func(s string) error { body["role"] = s; return nil })
		fs.Func("max-seats", "the most licenses it may hold, or none", func(s string) error {
			if s == "none" {
				body["max_seats"] = nil
				return nil
			}
			n, err := strconv.Atoi(s)
			body["max_seats"] = n
			return err
		})
	})
	if err != nil {
		return err
	}
	if len(rest) != 1 || len(body) == 0 {
		return usageErr("seatctl user-set USER [-name N] [-role R] [-max-seats N|none]")
	}
	id, err := c.userID(ctx, rest[0])
	if err != nil {
		return err
	}
	var u protocol.User
	if err := c.do(ctx, http.MethodPatch, "/users/"+id, body, &u); err != nil {
		return err
	}
	return printUsers([]protocol.User{u})
}

func cmdBlock(block bool) func(context.Context, []string) error {
	verb := "unblock"
	if block {
		verb = "block"
	}
	return func(ctx context.Context, args []string) error {
		c, rest, err := setup(verb, args, nil)
		if err != nil {
			return err
		}
		if len(rest) != 1 {
			return usageErr("seatctl %s USER", verb)
		}
		id, err := c.userID(ctx, rest[0])
		if err != nil {
			return err
		}
		var u protocol.User
		if err := c.do(ctx, http.MethodPost, "/users/"+id+"/"+verb, nil, &u); err != nil {
			return err
		}
		return printUsers([]protocol.User{u})
	}
}

func cmdTopUp(ctx context.Context, args []string) error {
	var key, note string
	c, rest, err := setup("topup", args, func(fs *flag.FlagSet) {
		fs.StringVar(&key, "key", "", "an idempotency key: a retried top-up with the same key counts once")
		fs.StringVar(&note, "note", "", "a note for the ledger")
	})
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return usageErr("seatctl topup MINUTES")
	}
	n, err := strconv.ParseInt(rest[0], 10, 64)
	if err != nil {
		return usageErr("topup: %q is not a number", rest[0])
	}
	var out struct {
		Balance int64 `json:"balance"`
	}
	if err := c.do(ctx, http.MethodPost, "/ppu/topup", map[string]any{"minutes": n, "key": key, "note": note}, &out); err != nil {
		return err
	}
	fmt.Printf("PPU balance: %d min\n", out.Balance)
	return nil
}

func cmdLedger(ctx context.Context, args []string) error {
	var offset, limit int
	c, err := setupNoArgs("ledger", args, func(fs *flag.FlagSet) {
		fs.IntVar(&offset, "offset", 0, "entries to skip")
		fs.IntVar(&limit, "limit", 100, "entries to show")
	})
	if err != nil {
		return err
	}
	var out struct {
		Entries []protocol.LedgerEntry `json:"entries"`
		Total   int64                  `json:"total"`
	}
	q := url.Values{"offset": {strconv.Itoa(offset)}, "limit": {strconv.Itoa(limit)}}
	if err := c.do(ctx, http.MethodGet, "/ppu/ledger?"+q.Encode(), nil, &out); err != nil {
		return err
	}
	w := table()
	fmt.Fprintln(w, "AT\tKIND\tDELTA\tBALANCE\tSESSION\tBY\tNOTE")
	for _, e := range out.Entries {
		fmt.Fprintf(w, "%s\t%s\t%+d\t%d\t%s\t%s\t%s\n", e.At.Local().Format(time.DateTime), e.Kind, e.Delta, e.Balance, e.SessionID, e.By, e.Note)
	}
	fmt.Fprintf(w, "(%d of %d)\n", len(out.Entries), out.Total)
	return w.Flush()
}

func cmdSessions(ctx context.Context, args []string) error {
	var state, user string
	var limit int
	var asJSON bool
	c, err := setupNoArgs("sessions", args, func(fs *flag.FlagSet) {
		fs.StringVar(&state, "state", "", "comma-separated states (default: all but ended)")
		fs.StringVar(&user, "user", "", "only this user's (name or id)")
		fs.IntVar(&limit, "limit", 100, "sessions to show")
		fs.BoolVar(&asJSON, "json", false, "print JSON")
	})
	if err != nil {
		return err
	}
	q := url.Values{"limit": {strconv.Itoa(limit)}}
	if state != "" {
		q.Set("state", state)
	}
	if user != "" {
		id := user
		if uuid.Validate(user) != nil || len(user) != 36 { // a name, or an id in another form
			if id, err = c.userID(ctx, user); err != nil {
				return err
			}
		}
		q.Set("user_id", id)
	}
	var out struct {
		Sessions []protocol.Session `json:"sessions"`
		Total    int                `json:"total"`
	}
	if err := c.do(ctx, http.MethodGet, "/sessions?"+q.Encode(), nil, &out); err != nil {
		return err
	}
	if asJSON {
		return printJSON(out.Sessions)
	}
	w := table()
	fmt.Fprintln(w, "ID\tUSER\tDEVICE\tSTATE\tKIND\tCODE\tSTARTED\tDURATION\tCONTROL")
	for _, s := range out.Sessions {
		st := s.State
		if s.State == protocol.StateTerminating {
			st = fmt.Sprintf("terminating (%ds)", s.SecondsLeft)
		}
		started := "-"
		if s.Started != nil {
			started = s.Started.Local().Format(time.DateTime)
		}
		dev := s.DeviceName
		if dev == "" {
			dev = s.DeviceID
		}
		ctl := ""
		if s.CanControl {
			ctl = "yes"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.UserName, dev, st, s.Kind, s.Code, started,
			(time.Duration(s.DurationSec) * time.Second).String(), ctl)
	}
	fmt.Fprintf(w, "(%d of %d)\n", len(out.Sessions), out.Total)
	return w.Flush()
}

func cmdEnd(ctx context.Context, args []string) error {
	c, rest, err := setup("end", args, nil)
	if err != nil {
		return err
	}
	if len(rest) == 0 {
		return usageErr("seatctl end SESSION_ID...")
	}
	var out struct {
		Results []protocol.EndResult `json:"results"`
	}
	if err := c.do(ctx, http.MethodPost, "/sessions/end", map[string][]string{"session_ids": rest}, &out); err != nil {
		return err
	}
	w := table()
	fmt.Fprintln(w, "ID\tRESULT")
	failed := 0
	for _, r := range out.Results {
		switch {
		case r.OK && r.Session != nil && r.Session.State == protocol.StateTerminating:
			fmt.Fprintf(w, "%s\tending in %ds\n", r.ID, r.Session.SecondsLeft)
		case r.OK:
			fmt.Fprintf(w, "%s\tended\n", r.ID)
		default:
			failed++
			fmt.Fprintf(w, "%s\t%s: %s\n", r.ID, r.Error.Code, r.Error.Message)
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d sessions were not ended", failed, len(out.Results))
	}
	return nil
}
