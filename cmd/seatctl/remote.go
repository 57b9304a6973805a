package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/seatbroker/seatbroker/client"
)

func init() {
	register(command{
		name:  "join",
		usage: "CODE  act as the remote side: join a session by its code and follow it until it ends (Ctrl-C closes it)",
		run:   runJoin,
	})
}

func runJoin(ctx context.Context, args []string) error {
	var f wsFlags
	fs := flag.NewFlagSet("join", flag.ContinueOnError)
	f.bind(fs, false)
	rest, err := parseAll(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return usageErr("seatctl join [-server URL] [-name NAME] CODE")
	}
	opts, _ := f.options(client.RoleRemote)
	first, _ := f.addrs()
	c, err := client.Dial(ctx, first, opts)
	if err != nil {
		f.explain(os.Stderr, err)
		return errors.New("could not connect")
	}
	defer c.Close()
	s, err := c.Join(ctx, rest[0])
	if err != nil {
		f.explain(os.Stderr, err)
		return errors.New("could not join")
	}
	fmt.Printf("joined session %s of %s on %s: %s\n", s.ID, s.UserName, s.DeviceName, s.State)
	err = watch(ctx, os.Stdout, &f, c, s.ID)
	if errors.Is(err, context.Canceled) {
		closeQuietly(c, s.ID)
		return nil
	}
	return err
}
