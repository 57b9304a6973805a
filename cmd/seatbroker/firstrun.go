package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/seatbroker/seatbroker/broker"
)

// Demo credentials, printed at start in demo mode.
const (
	demoAccount  = "demo"
	demoPassword = "demo-password"
)

// firstRun seeds the demo account in demo mode, and creates the account
// of the -init-* flags (in demo mode too: flags given are not ignored).
func firstRun(ctx context.Context, b *broker.Broker, o options, log *slog.Logger) error {
	if o.demo {
		if err := seedDemo(ctx, b); err != nil {
			return err
		}
	}
	if o.initAccount == "" {
		return nil
	}
	if o.initPassword == "" {
		return errors.New("-init-account needs -init-password (or SEATBROKER_INIT_PASSWORD)")
	}
	_, err := b.Bootstrap(ctx, broker.AccountSpec{ID: o.initAccount, Seats: o.initSeats, OwnerName: o.initOwner}, o.initPassword)
	if errors.Is(err, broker.ErrExists) {
		log.Info("first run: account exists already, left as it is", "account", o.initAccount)
		return nil
	}
	if err != nil {
		return fmt.Errorf("first run: %w", err)
	}
	log.Info("first run: account created", "account", o.initAccount, "owner", o.initOwner)
	return nil
}

// seedDemo makes the demo account: 3 licenses, PPU on with 120 minutes, an
// owner, an admin and two members.
func seedDemo(ctx context.Context, b *broker.Broker) error {
	owner, err := b.Bootstrap(ctx, broker.AccountSpec{ID: demoAccount, Name: "Demo Company", Seats: 3, PPUEnabled: true, OwnerName: "owner"}, demoPassword)
	if err != nil {
		return fmt.Errorf("demo seed: %w", err)
	}
	p, err := b.PrincipalFor(ctx, demoAccount, owner.ID)
	if err != nil {
		return err
	}
	if _, err := b.TopUp(ctx, p, 120, "demo-seed", "demo balance"); err != nil {
		return err
	}
	users := []broker.UserSpec{{Name: "admin", Role: "admin"}, {Name: "alice"}, {Name: "bob"}}
	for _, u := range users {
		nu, err := b.AddUser(ctx, p, u)
		if err != nil {
			return err
		}
		if err := b.SetPassword(ctx, p, nu.ID, demoPassword, ""); err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, `
  seatbroker demo account %q: 3 licenses, pay-per-use on with 120 minutes.
  Sign in as owner, admin, alice or bob; every password is %q.
  Nothing is kept: this is an in-process Redis. Set SEATBROKER_REDIS_URL to keep state.

`, demoAccount, demoPassword)
	return nil
}
