package rdb

import (
	"context"
	"errors"
	"fmt"
	json "github.com/goccy/go-json"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Reaper fires due timers of every account: leases that ran out, ending
// notices at their deadline, standby and paused times, PPU minutes. Every
// node runs one; the scripts are idempotent, so two reapers on one account
// do no harm. It reads the global index in time order, so its cost grows
// with what is due, not with how many sessions exist.
type Reaper struct {
	store    *Store
	interval time.Duration
	sweep    time.Duration
	log      *slog.Logger
	// SweepMax is about how many accounts one sweep refiles (default
	// 20,000): a sweep goes on where the last one stopped, so every
	// account is refiled once every ceil(accounts / SweepMax) sweeps.
	SweepMax int

	mu     sync.Mutex // guards cancel
	cancel context.CancelFunc
}

// Reaper batch sizes.
const (
	reapAccounts    = 256   // accounts per pass
	reapSteps       = 500   // timers per account per pass
	sweepChunk      = 500   // accounts per SSCAN of a sweep
	defaultSweepMax = 20000 // accounts per sweep (Reaper.SweepMax)
	sweepErrs       = 10    // accounts a sweep's error names; the rest are counted
)

// NewReaper returns a reaper that looks every interval, and refiles every
// account from its own timers every sweep (a node that died between a
// script and filing its account is caught up then).
func NewReaper(s *Store, interval, sweep time.Duration, log *slog.Logger) *Reaper {
	return &Reaper{store: s, interval: interval, sweep: sweep, log: log, SweepMax: defaultSweepMax}
}

// Run reaps until ctx is done or Close is called.
func (r *Reaper) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	r.mu.Lock()
	r.cancel = cancel
	r.mu.Unlock()
	defer cancel()
	tick := time.NewTicker(r.interval)
	defer tick.Stop()
	sweep := time.NewTicker(r.sweep)
	defer sweep.Stop()
	_, _ = r.SweepTurn(ctx)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			if _, err := r.Pass(ctx); err != nil && ctx.Err() == nil {
				r.log.Warn("reaper pass failed", "err", err)
			}
		case <-sweep.C:
			if _, err := r.SweepTurn(ctx); err != nil && ctx.Err() == nil {
				r.log.Warn("reaper sweep failed", "err", err)
			}
		}
	}
}

// Close stops Run. It is idempotent.
func (r *Reaper) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cancel != nil {
		r.cancel()
	}
}

// Pass fires what is due now in up to reapAccounts accounts and returns how
// many timers fired.
func (r *Reaper) Pass(ctx context.Context) (int, error) {
	s := r.store
	now, err := s.Now(ctx)
	if err != nil {
		return 0, err
	}
	due, err := s.client.ZRangeByScoreWithScores(ctx, s.keys.DueIndex(), &redis.ZRangeBy{
		Min: "-inf", Max: strconv.FormatInt(now.UnixMilli(), 10), Count: reapAccounts,
	}).Result()
	if err != nil {
		return 0, err
	}
	// an account that fails (its master down until a failover, a key of
	// the wrong type) is passed over, not waited for: the others' timers
	// fire on time; it stays in the index and is tried again next pass
	steps := 0
	var errs []error
	for _, z := range due {
		acct, ok := z.Member.(string)
		if !ok {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		n, err := r.reapAccount(ctx, acct, z.Score)
		steps += n
		if err != nil {
			errs = append(errs, fmt.Errorf("account %s: %w", acct, err))
		}
	}
	return steps, errors.Join(errs...)
}

func (r *Reaper) reapAccount(ctx context.Context, acct string, seen float64) (int, error) {
	s := r.store
	res, err := s.runAccount(ctx, opReap, acct, reapSteps)
	if err != nil {
		return 0, err
	}
	var p struct {
		Steps int    `json:"steps"`
		Next  string `json:"next"`
	}
	if res.Status == StatusOK {
		if err := decodeInto(res, &p); err != nil {
			return 0, err
		}
	} else {
		p.Next = "-1" // the account is gone
	}
	seenS := strconv.FormatFloat(seen, 'f', 0, 64)
	set, err := scriptDueSet.Run(ctx, s.client, []string{s.keys.DueIndex()}, acct, seenS, p.Next).Int64Slice()
	if err != nil {
		return p.Steps, err
	}
	switch {
	case len(set) != 1:
		return p.Steps, fmt.Errorf("%w: due_set %v", ErrUnexpectedReply, set)
	case set[0] == dueSetMoved:
		// the entry moved since Pass read it: an operation filed an
		// earlier timer (LT), or another reaper set it and checks after
		// its own set
		return p.Steps, nil
	case set[0] != dueSetDone:
		return p.Steps, fmt.Errorf("%w: due_set status %d", ErrUnexpectedReply, set[0])
	}
	return p.Steps, r.pullDown(ctx, acct, p.Next)
}

// due_set.lua's statuses.
const (
	dueSetDone  = 0 // the entry was set
	dueSetMoved = 1 // the entry had moved and was left alone
)

// pullDown files acct in the global index at its first timer as it is now,
// if that is earlier than next, the score the reaper just set ("-1":
// removed). The set raised the entry from the timer that fired to the
// account's next timer as the reap saw it. An operation that ran on the
// account after the reap and filed an earlier timer (an end's deadline, an
// open's lease) files it in the index with ZADD LT once its script has
// replied; if that came before the set, it was a no-op against the timer
// that fired, and the set buried it. Its script ran before the set, so
// before this read, which sees its timer; one that files after the set
// lowers the entry itself. So the entry is never left later than the
// account's first timer. (No one script can do this: the account's timers
// and the index are in two slots in Redis Cluster.)
func (r *Reaper) pullDown(ctx context.Context, acct, next string) error {
	s := r.store
	first, err := s.client.ZRangeWithScores(ctx, s.keys.Due(acct), 0, 0).Result()
	if err != nil || len(first) == 0 || first[0].Score >= parkedScore {
		return err
	}
	if next != "-1" {
		set, err := strconv.ParseFloat(next, 64)
		if err != nil {
			return fmt.Errorf("%w: next %q", ErrUnexpectedReply, next)
		}
		if first[0].Score >= set {
			return nil // the usual case: nothing came between
		}
	}
	return s.client.ZAddLT(ctx, s.keys.DueIndex(), redis.Z{Score: first[0].Score, Member: acct}).Err()
}

// SweepTurn sweeps when no node of this key prefix has in the last
// interval, and says whether it did: one node sweeps per interval, not every
// node (a sweep reads every account: at a million accounts, seconds of
// Redis, which every node repeating would multiply). The turn lasts 9/10 of
// the interval, so a node alone, whose ticker fires once an interval, finds
// it free every time; a node that dies during its sweep delays the next by
// at most that.
func (r *Reaper) SweepTurn(ctx context.Context) (bool, error) {
	s := r.store
	ok, err := s.client.SetNX(ctx, s.keys.SweepTurn(), "1", r.sweep*9/10).Result()
	if err != nil || !ok {
		return false, err
	}
	_, err = r.Sweep(ctx)
	return true, err
}

// Sweep refiles accounts in the global index from their own earliest
// timer: about SweepMax of them, from where the last sweep stopped (the
// cursor is kept in Redis, so the next sweep goes on whichever node runs
// it). Its cost is bounded, and every account is refiled once every
// ceil(accounts / SweepMax) sweeps: at 10,000 accounts every sweep, at a
// million every 50 (a sweep of every account read every account's first
// timer, ~3 µs of Redis each: seconds at a million, every interval).
// An account it cannot read or refile (a key of the wrong type; in Redis
// Cluster, its master down) is passed over, as in a pass: the sweep goes
// on and the error names it. Only an error reading the set itself, or the
// context ending, stops it where it is, without moving the cursor on.
// It returns how many accounts it read.
func (r *Reaper) Sweep(ctx context.Context) (int, error) {
	s := r.store
	at, err := s.client.Get(ctx, s.keys.SweepCursor()).Uint64()
	if err != nil && !errors.Is(err, redis.Nil) {
		return 0, err
	}
	cursor, read := at, 0
	var errs []error
	failed := 0 // accounts passed over; the first sweepErrs are named
	passOver := func(id string, err error) {
		if failed++; failed <= sweepErrs {
			errs = append(errs, fmt.Errorf("account %s: %w", id, err))
		}
	}
	for {
		ids, next, err := s.client.SScan(ctx, s.keys.Accounts(), cursor, "", sweepChunk).Result()
		if err != nil {
			return read, errors.Join(append(errs, err)...)
		}
		read += len(ids)
		pipe := s.client.Pipeline()
		cmds := make([]*redis.ZSliceCmd, len(ids))
		for i, id := range ids {
			cmds[i] = pipe.ZRangeWithScores(ctx, s.keys.Due(id), 0, 0)
		}
		if len(ids) > 0 {
			_, _ = pipe.Exec(ctx) // each command's error is read below
		}
		add := s.client.Pipeline()
		var added []string
		for i, id := range ids {
			z, err := cmds[i].Result()
			if err != nil {
				passOver(id, err)
				continue
			}
			if len(z) == 1 && z[0].Score < parkedScore { // (a parked marker is no timer)
				add.ZAddLT(ctx, s.keys.DueIndex(), redis.Z{Score: z[0].Score, Member: id})
				added = append(added, id)
			}
		}
		if add.Len() > 0 {
			cmds, _ := add.Exec(ctx)
			for i, cmd := range cmds {
				if err := cmd.Err(); err != nil {
					passOver(added[i], err)
				}
			}
		}
		if err := ctx.Err(); err != nil {
			return read, errors.Join(append(errs, err)...)
		}
		cursor = next
		if cursor == 0 || read >= r.SweepMax {
			// (a cursor of 0: the set was walked to its end, and the next
			// sweep starts again)
			if failed > sweepErrs {
				errs = append(errs, fmt.Errorf("and %d accounts more", failed-sweepErrs))
			}
			errs = append(errs, s.client.Set(ctx, s.keys.SweepCursor(), strconv.FormatUint(cursor, 10), 0).Err())
			return read, errors.Join(errs...)
		}
	}
}

// Subscribe listens to the events of the given accounts. Add and remove
// accounts with the returned subscription's methods.
func (s *Store) Subscribe(ctx context.Context, accts ...string) *redis.PubSub {
	chans := make([]string, len(accts))
	for i, a := range accts {
		chans[i] = s.keys.Channel(a)
	}
	return s.client.Subscribe(ctx, chans...)
}

// DecodeEvents decodes one pub/sub message of an account's channel: a
// session's JSON alone, the event that the session changed (the account
// code sends these as they are, unwrapped), or a batch of other events
// ({"account", "events"}), which ends what one run of the account code
// published (End). The account comes from the channel's name.
func (k Keys) DecodeEvents(channel, payload string) (EventBatch, error) {
	var m struct {
		EventBatch
		SessionRec
	}
	if err := json.Unmarshal([]byte(payload), &m); err != nil {
		return EventBatch{}, err
	}
	acct, ok := k.ChannelAccount(channel)
	if !ok {
		return EventBatch{}, fmt.Errorf("%w: channel %q", ErrUnexpectedReply, channel)
	}
	if m.ID != "" {
		return EventBatch{Account: acct, Events: List[Event]{{Type: "session", Session: &m.SessionRec}}}, nil
	}
	if m.Account != acct {
		return EventBatch{}, fmt.Errorf("%w: account %q on channel %q", ErrUnexpectedReply, m.Account, channel)
	}
	m.EventBatch.End = true
	return m.EventBatch, nil
}
