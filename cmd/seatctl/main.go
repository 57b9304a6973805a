// Command seatctl talks to a seatbroker node from a terminal: as an admin
// over the REST API, and as a desktop or remote client over the websocket.
// `seatctl help` lists the commands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

// command is one subcommand. Each file registers its own in init.
type command struct {
	name  string
	usage string // one line: arguments and what it does
	run   func(ctx context.Context, args []string) error
}

var commands = map[string]command{}

func register(c command) { commands[c.name] = c }

func main() {
	if len(os.Args) < 2 || os.Args[1] == "help" || os.Args[1] == "-h" || os.Args[1] == "--help" {
		usage()
		return
	}
	c, ok := commands[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "seatctl: unknown command %q\n\n", os.Args[1])
		usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	err := c.run(ctx, os.Args[2:])
	if errors.Is(err, flag.ErrHelp) {
		return // -h: the flag set printed the usage
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "seatctl "+c.name+":", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: seatctl COMMAND [flags]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  %-14s %s\n", n, commands[n].usage)
	}
	fmt.Fprintln(os.Stderr, "\nEvery command but account-create (which talks to Redis) takes -server (env SEATBROKER_SERVER,\n"+
		"default http://127.0.0.1:8080). The admin commands (all but open, join, login, version and\n"+
		"account-create) sign in with -token (env SEATBROKER_TOKEN, which seatctl login prints).")
}
