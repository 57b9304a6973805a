package broker_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/seatbroker/seatbroker/broker"
	"github.com/seatbroker/seatbroker/broker/protocol"
	"github.com/seatbroker/seatbroker/internal/testredis"
)

// beforeDueSet runs fn once, just before the reaper's compare-and-set of an
// account in the global timer index (due_set.lua) goes to Redis: the
// moment between the reaper's two round trips, where a GC pause, a busy
// scheduler or a slow link can hold it.
type beforeDueSet struct {
	index string
	once  sync.Once
	armed chan struct{}
	fn    func()
}

func (h *beforeDueSet) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *beforeDueSet) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (h *beforeDueSet) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		a := cmd.Args()
		if (cmd.Name() == "evalsha" || cmd.Name() == "eval") && len(a) == 7 && a[3] == h.index && a[5] != "" {
			select {
			case <-h.armed:
				h.once.Do(h.fn)
			default:
			}
		}
		return next(ctx, cmd)
	}
}

// TestReview3EndDuringAReapPassEndsAtItsDeadline: SPEC.md invariant 4, a
// terminating session ends within 1 s after its deadline, whichever nodes
// are alive. Here every node is alive; an admin ends a session while the
// reaper is between running an account's due timers and refiling the
// account in the global index. The end files its deadline (ZADD LT, a
// no-op: the index still holds the timer the reaper just fired), then the
// reaper's compare-and-set succeeds and files the account's next timer as
// it was before the end: the deadline is forgotten until the sweep.
func TestReview3EndDuringAReapPassEndsAtItsDeadline(t *testing.T) {
	cfg := broker.DefaultConfig()
	cfg.Prefix = testredis.Prefix(t)
	cfg.Notice = 500 * time.Millisecond
	cfg.Standby = 300 * time.Millisecond
	cfg.ReapInterval = 50 * time.Millisecond
	// the sweep keeps its default (10 s), as in production
	hook := &beforeDueSet{index: cfg.Prefix + ":due", armed: make(chan struct{})}
	rc := redis.NewClient(&redis.Options{Addr: testredis.Addr(t)})
	rc.AddHook(hook)
	t.Cleanup(func() { _ = rc.Close() })
	b := startBroker(t, rc, cfg)
	f := accountOn(t, b, setup{seats: 5})
	ann := f.user("ann", nil)
	g := f.mustOpen(ann, "d1") // active, lease 30 s
	f.openCode(ann, "d2")      // standby: its timer falls due in 300 ms

	var res []protocol.EndResult
	var endErr error
	ended := make(chan struct{})
	hook.fn = func() {
		defer close(ended)
		res, endErr = b.EndSessions(context.Background(), f.owner, []string{g.Session.ID})
	}
	close(hook.armed)
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the reaper did not refile the account")
	}
	require.NoError(t, endErr)
	require.Len(t, res, 1)
	require.NotNil(t, res[0].Session.Deadline)
	deadline := *res[0].Session.Deadline
	require.Eventually(t, func() bool { return f.state(g.Session.ID).State == protocol.StateEnded },
		cfg.Notice+time.Second, 20*time.Millisecond,
		"the terminating session was still %q 1 s after its deadline %v", f.state(g.Session.ID).State, deadline)
}
