package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/seatbroker/seatbroker/client"
)

func init() {
	register(command{
		name:  "open",
		usage: "[-code] act as a desktop client: open a session (print its code), then follow it; keys p/r/c/q + Enter pause, resume, close, quit",
		run:   runOpen,
	})
}

func runOpen(ctx context.Context, args []string) error {
	var f wsFlags
	fs := flag.NewFlagSet("open", flag.ContinueOnError)
	f.bind(fs, true)
	withCode := fs.Bool("code", false, "generate a session code for the remote side to join")
	rest, err := parseAll(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return usageErr("seatctl open takes no arguments, got %q", rest[0])
	}
	f.secrets(fs)
	opts, err := f.options(client.RoleDesktop)
	if err != nil {
		return err
	}
	first, _ := f.addrs()
	c, err := client.Dial(ctx, first, opts)
	if err != nil {
		f.explain(os.Stderr, err)
		return errors.New("could not connect")
	}
	defer c.Close()
	u := c.User()
	if (f.user != "" && u.Name != f.user) || (f.account != "" && u.Account != f.account) {
		// a token exported for another user (README: the admin's) would
		// open a session, and take a license, in that user's name
		return fmt.Errorf("the token (-token or SEATBROKER_TOKEN) signs in as %s in account %s, not as %s in %s: unset SEATBROKER_TOKEN to sign in with the password",
			u.Name, u.Account, f.user, f.account)
	}
	fmt.Printf("signed in as %s (%s) in account %s, device %s\n", u.Name, u.Role, u.Account, opts.DeviceID)

	var oo []client.OpenOption
	if *withCode {
		oo = append(oo, client.WithCode())
	}
	g, err := c.Open(ctx, oo...)
	if err != nil {
		f.explain(os.Stderr, err)
		return errors.New("no seat")
	}
	sid := g.Session.ID
	fmt.Printf("session %s: %s, %s seat\n", sid, g.Session.State, g.Session.Kind)
	if g.Session.Code != "" {
		fmt.Printf("\n  SESSION CODE: %s\n\n  on the remote side: seatctl join %s\n\n", g.Session.Code, g.Session.Code)
	}
	fmt.Println("keys: p pause, r resume, c close, q quit (the session lapses with its lease) - each followed by Enter")

	keys := make(chan string)
	go readKeys(keys) // ends with the process
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- watch(wctx, os.Stdout, &f, c, sid) }()
	for {
		select {
		case err := <-done:
			if errors.Is(err, context.Canceled) && ctx.Err() != nil {
				closeQuietly(c, sid)
				return nil
			}
			return err
		case k := <-keys:
			if err := desktopKey(ctx, &f, c, sid, k); err != nil {
				if errors.Is(err, errQuit) {
					return nil
				}
				f.explain(os.Stdout, err)
			}
		}
	}
}

var errQuit = errors.New("quit")

func desktopKey(ctx context.Context, f *wsFlags, c *client.Client, sid, k string) error {
	switch k {
	case "p":
		s, err := c.Pause(ctx, sid)
		if err == nil {
			fmt.Printf("session %s: %s (seat freed)\n", s.ID, s.State)
		}
		return err
	case "r":
		g, err := c.Resume(ctx, sid)
		if err == nil {
			fmt.Printf("session %s: %s again, %s seat\n", g.Session.ID, g.Session.State, g.Session.Kind)
		}
		return err
	case "c":
		_, err := c.CloseSession(ctx, sid)
		return err // the watcher prints the end and returns
	case "q":
		return errQuit
	case "":
		return nil
	}
	fmt.Println("keys: p pause, r resume, c close, q quit")
	return nil
}

func readKeys(out chan<- string) {
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		out <- strings.ToLower(strings.TrimSpace(sc.Text()))
	}
}
