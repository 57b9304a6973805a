package rdb

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Batching. Every state change of an account is an operation of the
// account script (lib.lua). Calls go through a batcher: a few writer
// goroutines each take whatever calls are waiting (up to maxBatch), put the
// operations of one account into one script call (up to maxOps, in the
// order they came), and send the script calls of all accounts as one
// pipeline. A lone call waits for nothing: it goes out at once.
//
// Why: go-redis sends one command per pooled connection, and Redis spends
// about twice the CPU on that as on the same commands pipelined; and a
// script call has a fixed cost (reading the account, catching up on its
// timers, writing back, publishing) that the operations of one call share.
// Each operation stays atomic; the operations of one script call commit
// together.
const (
	batchWorkers = 2
	maxBatch     = 256
	maxOps       = 64
	batchTimeout = 5 * time.Second
)

type call struct {
	ctx  context.Context
	acct string
	op   string
	args []any
	done chan callResult // buffered: the worker never blocks on a gone caller
}

type callResult struct {
	res Result
	err error
}

type batcher struct {
	client   redis.UniversalClient
	keys     Keys
	defaults string // ARGV[1] of every account script call
	in       chan *call
	quit     chan struct{}
	wg       sync.WaitGroup
	once     sync.Once
	// fcall is set once the account library is loaded as a Redis function:
	// calls then use FCALL, else EVALSHA.
	fcall atomic.Bool
}

func newBatcher(client redis.UniversalClient, keys Keys, defaults string) *batcher {
	b := &batcher{client: client, keys: keys, defaults: defaults,
		in: make(chan *call, maxBatch), quit: make(chan struct{})}
	b.wg.Add(batchWorkers)
	for range batchWorkers {
		go b.work()
	}
	return b
}

// ErrClosed is returned for calls made after the store was closed.
var ErrClosed = errors.New("rdb: store closed")

// run sends one account operation through the batcher and waits for its
// result.
func (b *batcher) run(ctx context.Context, acct, op string, args []any) (Result, error) {
	if n, ok := opArity[op]; !ok || n != len(args) {
		// a batch with it would be refused whole, with the other callers'
		// operations in it
		return Result{}, fmt.Errorf("rdb: operation %q with %d arguments", op, len(args))
	}
	c := &call{ctx: ctx, acct: acct, op: op, args: args, done: make(chan callResult, 1)}
	select {
	case b.in <- c:
	case <-b.quit:
		return Result{}, ErrClosed
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
	select {
	case r := <-c.done:
		return r.res, r.err
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
}

func (b *batcher) work() {
	defer b.wg.Done()
	batch := make([]*call, 0, maxBatch)
	for {
		select {
		case <-b.quit:
			return
		case c := <-b.in:
			batch = append(batch[:0], c)
		}
	fill:
		for len(batch) < maxBatch {
			select {
			case c := <-b.in:
				batch = append(batch, c)
			default:
				break fill
			}
		}
		b.send(batch)
	}
}

// group splits a batch into script calls: the calls of one account, in
// the order they came, at most maxOps each, and at most one operation per
// session (see answerSession). The calls of one account stay in order in the
// pipeline, so a split changes no outcome.
func group(batch []*call) [][]*call {
	type openGroup struct {
		i    int             // index in groups
		sids map[string]bool // the sessions its operations name
	}
	var groups [][]*call
	open := make(map[string]*openGroup, len(batch)) // account -> its open group
	for _, c := range batch {
		g := open[c.acct]
		sid := answerSession(c)
		if g == nil || len(groups[g.i]) == maxOps || (sid != "" && g.sids[sid]) {
			g = &openGroup{i: len(groups), sids: map[string]bool{}}
			groups = append(groups, nil)
			open[c.acct] = g
		}
		groups[g.i] = append(groups[g.i], c)
		if sid != "" {
			g.sids[sid] = true
		}
	}
	return groups
}

// answerSession names the session an operation answers with, for the
// operations whose first argument is one (open, join, pause, resume,
// close). An answer shows its session as the call leaves it; two of them
// on one session in one call would both show the later state, and two
// resumes would report one fencing token twice. So they go to two calls.
func answerSession(c *call) string {
	switch c.op {
	case opOpen, opJoin, opPause, opResume, opClose:
		if len(c.args) > 0 {
			if sid, ok := c.args[0].(string); ok {
				return sid
			}
		}
	}
	return ""
}

func (b *batcher) argv(g []*call) []any {
	n := 2
	for _, c := range g {
		n += 1 + len(c.args)
	}
	argv := make([]any, 0, n)
	argv = append(argv, b.defaults, len(g))
	for _, c := range g {
		argv = append(argv, c.op)
		argv = append(argv, c.args...)
	}
	return argv
}

func (b *batcher) send(batch []*call) {
	// The pipeline outlives no caller on purpose: it is bounded by its own
	// timeout, not by the first caller's cancellation.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(batch[0].ctx), batchTimeout)
	defer cancel()
	groups := group(batch)
	vals := make([]any, len(groups))
	errs := make([]error, len(groups))
	if len(groups) == 1 {
		vals[0], errs[0] = b.call(ctx, b.client, groups[0]).Result()
	} else {
		pipe := b.client.Pipeline()
		cmds := make([]*redis.Cmd, len(groups))
		for i, g := range groups {
			cmds[i] = b.call(ctx, pipe, g)
		}
		_, _ = pipe.Exec(ctx) // errors are read per command below
		for i := range groups {
			vals[i], errs[i] = cmds[i].Result()
		}
	}
	for i, g := range groups {
		if isNoScript(errs[i]) || isNoFunction(errs[i]) {
			vals[i], errs[i] = b.again(ctx, g, errs[i])
		}
	}
	// An account whose first timer moved earlier is refiled in the global
	// index, before any caller hears back. LT: this only ever pulls the
	// account's turn earlier; a reaper that raises it uses compare-and-set
	// (due_set.lua), then reads the account's first timer and lowers the
	// entry to it, for a filing here that came between its reap and its
	// set and was a no-op (Reaper.pullDown).
	results := make([][]Result, len(groups))
	var moved []redis.Z
	var movedAt []int
	for i, g := range groups {
		if errs[i] != nil {
			continue
		}
		var due int64
		results[i], due, errs[i] = decodeBatch(vals[i], len(g))
		if due > 0 {
			moved = append(moved, redis.Z{Score: float64(due), Member: g[0].acct})
			movedAt = append(movedAt, i)
		}
	}
	if len(moved) > 0 {
		pipe := b.client.Pipeline()
		for _, z := range moved {
			pipe.ZAddLT(ctx, b.keys.DueIndex(), z)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			for _, i := range movedAt {
				errs[i] = fmt.Errorf("file timer: %w", err)
			}
		}
	}
	for i, g := range groups {
		for j, c := range g {
			if errs[i] != nil {
				c.done <- callResult{err: errs[i]}
				continue
			}
			c.done <- callResult{res: results[i][j]}
		}
	}
}

// decodeBatch reads an account script's reply: {next due, status, payload,
// status, payload, ...} for n operations.
func decodeBatch(v any, n int) ([]Result, int64, error) {
	arr, ok := v.([]any)
	if !ok || len(arr) != 1+2*n {
		return nil, 0, fmt.Errorf("%w: %T of %d", ErrUnexpectedReply, v, n)
	}
	moved, ok := arr[0].(string)
	if !ok {
		return nil, 0, fmt.Errorf("%w: due %T", ErrUnexpectedReply, arr[0])
	}
	var due int64
	if moved != "" {
		var err error
		if due, err = strconv.ParseInt(moved, 10, 64); err != nil {
			return nil, 0, fmt.Errorf("%w: due %q", ErrUnexpectedReply, moved)
		}
	}
	out := make([]Result, n)
	for i := range n {
		st, ok := arr[1+2*i].(int64)
		if !ok {
			return nil, 0, fmt.Errorf("%w: status %T", ErrUnexpectedReply, arr[1+2*i])
		}
		payload, ok := arr[2+2*i].(string)
		if !ok {
			return nil, 0, fmt.Errorf("%w: payload %T", ErrUnexpectedReply, arr[2+2*i])
		}
		out[i] = Result{Status: Status(st), Payload: []byte(payload)}
	}
	return out, due, nil
}

// call queues (on a pipeline) or sends one script call of a group.
func (b *batcher) call(ctx context.Context, c redis.Cmdable, g []*call) *redis.Cmd {
	keys := b.keys.account(g[0].acct)
	if b.fcall.Load() {
		return c.FCall(ctx, accountFunction, keys, b.argv(g)...)
	}
	return scriptAccount.EvalSha(ctx, c, keys, b.argv(g)...)
}

// again runs a group whose code Redis did not have (a restart or failover
// lost its script cache, or its functions): it loads the code and calls
// once more. When the function cannot be loaded it falls back to scripts.
func (b *batcher) again(ctx context.Context, g []*call, err error) (any, error) {
	keys := b.keys.account(g[0].acct)
	if isNoFunction(err) {
		if lerr := loadFunction(ctx, b.client); lerr == nil {
			return b.client.FCall(ctx, accountFunction, keys, b.argv(g)...).Result()
		}
		b.fcall.Store(false)
	}
	return scriptAccount.Run(ctx, b.client, keys, b.argv(g)...).Result()
}

// loadFunction loads the account library as a Redis function, on every
// master of a cluster. REPLACE: loading it again changes nothing.
func loadFunction(ctx context.Context, client redis.UniversalClient) error {
	if cc, ok := client.(*redis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			return c.FunctionLoadReplace(ctx, accountLibrary).Err()
		})
	}
	return client.FunctionLoadReplace(ctx, accountLibrary).Err()
}

func isNoFunction(err error) bool {
	return err != nil && strings.Contains(err.Error(), "Function not found")
}

func isNoScript(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT")
}

func (b *batcher) close() {
	b.once.Do(func() {
		close(b.quit)
		b.wg.Wait()
	})
}
