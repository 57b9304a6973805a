package broker

import (
	"context"
	"time"
)

// limit is one rate limit on attempts that guess a secret (a session code,
// a password): at most rate a minute, with a burst of as many.
type limit struct {
	name string
	rate int
}

// take takes one attempt from each limit before the attempt is made, so
// that attempts sent at the same moment cannot all pass a limit that only
// the ones before them had used: however many arrive together, no more
// than the limit are tried. When a limit refuses, the attempts already
// taken from the others are given back. An attempt that turns out not to
// count (the right secret) is given back with giveBack.
func (b *Broker) take(ctx context.Context, ls ...limit) error {
	for i, l := range ls {
		ok, retry, err := b.store.Allow(ctx, l.name, l.rate, time.Minute, l.rate)
		if err == nil && ok {
			continue
		}
		b.giveBack(ctx, ls[:i]...)
		if err != nil {
			return storeErr(err)
		}
		return &RateLimitedError{RetryAfterSec: int((retry + time.Second - 1) / time.Second)}
	}
	return nil
}

// giveBack returns one attempt to each limit. It is best effort: an
// attempt that cannot be given back stays counted, the safe side.
func (b *Broker) giveBack(ctx context.Context, ls ...limit) {
	for _, l := range ls {
		if err := b.store.Refund(ctx, l.name, l.rate, time.Minute, l.rate); err != nil {
			b.log.Warn("could not give an attempt back to its rate limit", "limit", l.name, "err", err)
		}
	}
}
