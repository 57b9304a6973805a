package rdb

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Batching: go-redis sends one command per pooled connection, and Redis
// spends about twice the CPU on that as on the same commands pipelined. So
// script calls go through a batcher: a few writer goroutines each take
// whatever calls are waiting (up to maxBatch) and send them as one
// pipeline. A lone call waits for nothing: it goes out at once.
const (
	batchWorkers = 4
	maxBatch     = 256
	batchTimeout = 5 * time.Second
)

type call struct {
	ctx    context.Context
	script *redis.Script
	keys   []string
	args   []any
	done   chan callResult // buffered: the worker never blocks on a gone caller
}

type callResult struct {
	val any
	err error
}

type batcher struct {
	client redis.UniversalClient
	in     chan *call
	quit   chan struct{}
	wg     sync.WaitGroup
	once   sync.Once
}

func newBatcher(client redis.UniversalClient) *batcher {
	b := &batcher{client: client, in: make(chan *call, maxBatch), quit: make(chan struct{})}
	b.wg.Add(batchWorkers)
	for range batchWorkers {
		go b.work()
	}
	return b
}

// ErrClosed is returned for calls made after the store was closed.
var ErrClosed = errors.New("rdb: store closed")

// run sends one script call through the batcher and waits for its reply.
func (b *batcher) run(ctx context.Context, s *redis.Script, keys []string, args ...any) (any, error) {
	c := &call{ctx: ctx, script: s, keys: keys, args: args, done: make(chan callResult, 1)}
	select {
	case b.in <- c:
	case <-b.quit:
		return nil, ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case r := <-c.done:
		return r.val, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
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

func (b *batcher) send(batch []*call) {
	// The pipeline outlives no caller on purpose: it is bounded by its own
	// timeout, not by the first caller's cancellation.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(batch[0].ctx), batchTimeout)
	defer cancel()
	if len(batch) == 1 {
		c := batch[0]
		v, err := c.script.Run(ctx, b.client, c.keys, c.args...).Result()
		c.done <- callResult{v, err}
		return
	}
	pipe := b.client.Pipeline()
	cmds := make([]*redis.Cmd, len(batch))
	for i, c := range batch {
		cmds[i] = c.script.EvalSha(ctx, pipe, c.keys, c.args...)
	}
	_, _ = pipe.Exec(ctx) // errors are read per command below
	for i, c := range batch {
		v, err := cmds[i].Result()
		if err != nil && isNoScript(err) {
			// Redis lost its script cache (restart, failover): Run loads it.
			v, err = c.script.Run(ctx, b.client, c.keys, c.args...).Result()
		}
		c.done <- callResult{v, err}
	}
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
