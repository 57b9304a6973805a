package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// op is one unit of work of one worker: it does some cycles (usually one)
// and says how many. Its latency is charged to each of them.
type op func(ctx context.Context, worker int) (cycles int, err error)

// sample is one timed run of one measurement.
type sample struct {
	cycles   int64
	elapsed  time.Duration
	p50, p99 time.Duration
	redis    redisStats // what Redis did during the run
	procUsec float64    // CPU time of this process (the broker node and the load) during the run, µs
}

func (s sample) perSec() float64 { return float64(s.cycles) / s.elapsed.Seconds() }

// cpuPerCycle is Redis's CPU time per cycle, µs.
func (s sample) cpuPerCycle() float64 { return s.redis.cpuUsec / float64(s.cycles) }

// busy is the share of the run Redis spent on the CPU: below 1, Redis
// waited for its clients.
func (s sample) busy() float64 { return s.redis.cpuUsec / float64(s.elapsed.Microseconds()) }

// procPerCycle is this process's CPU time per cycle, µs: the Go side,
// which shares the machine's cores with Redis.
func (s sample) procPerCycle() float64 { return s.procUsec / float64(s.cycles) }

// evalPerCycle is the time Redis spent in EVALSHA and FCALL per cycle, µs
// (commandstats: the scripts' own commands included).
func (s sample) evalPerCycle() float64 {
	return float64(s.redis.commands["evalsha"].usec+s.redis.commands["fcall"].usec) / float64(s.cycles)
}

// drive runs workers goroutines doing fn until d has passed, and reads
// Redis's counters before and after. The first error stops the run and is
// returned.
func drive(ctx context.Context, stats *redis.Client, workers int, d time.Duration, fn op) (sample, error) {
	before, err := readStats(ctx, stats)
	if err != nil {
		return sample{}, err
	}
	cpu0 := processCPU()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		total   atomic.Int64
		wg      sync.WaitGroup
		errOnce sync.Once
		first   error
		lats    = make([][]time.Duration, workers)
	)
	start := time.Now()
	deadline := start.Add(d)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			own := make([]time.Duration, 0, 1<<14)
			for ctx.Err() == nil {
				t0 := time.Now()
				if t0.After(deadline) {
					break
				}
				n, err := fn(ctx, w)
				if err != nil {
					if ctx.Err() == nil {
						errOnce.Do(func() { first = err; cancel() })
					}
					break
				}
				lat := time.Since(t0)
				for range n {
					own = append(own, lat)
				}
				total.Add(int64(n))
			}
			lats[w] = own
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	procUsec := processCPU() - cpu0
	if first != nil {
		return sample{}, first
	}
	after, err := readStats(context.WithoutCancel(ctx), stats)
	if err != nil {
		return sample{}, err
	}
	all := slices.Concat(lats...)
	slices.Sort(all)
	return sample{cycles: total.Load(), elapsed: elapsed, p50: quantile(all, 0.50), p99: quantile(all, 0.99),
		redis: after.since(before), procUsec: procUsec}, nil
}

// processCPU is this process's user+system CPU time so far, µs.
func processCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e3
}

func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))]
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// series is every sample of one measurement, a round each.
type series struct {
	name    string
	samples []sample
}

func (s *series) med(f func(sample) float64) float64 {
	xs := make([]float64, len(s.samples))
	for i, x := range s.samples {
		xs[i] = f(x)
	}
	return median(xs)
}

func (s *series) perSec() float64 { return s.med(sample.perSec) }
func (s *series) cpu() float64    { return s.med(sample.cpuPerCycle) }
func (s *series) eval() float64   { return s.med(sample.evalPerCycle) }
func (s *series) busy() float64   { return s.med(sample.busy) }
func (s *series) proc() float64   { return s.med(sample.procPerCycle) }
func (s *series) p50() float64 {
	return s.med(func(x sample) float64 { return float64(x.p50.Microseconds()) })
}
func (s *series) p99() float64 {
	return s.med(func(x sample) float64 { return float64(x.p99.Microseconds()) })
}

// ratio is the median of the per-round ratios of s to ref: both ran in
// the same round, so the machine's noise hits them alike.
func (s *series) ratio(ref *series) float64 {
	n := min(len(s.samples), len(ref.samples))
	xs := make([]float64, n)
	for i := range n {
		xs[i] = s.samples[i].perSec() / ref.samples[i].perSec()
	}
	return median(xs)
}

// total sums Redis's counters over every round.
func (s *series) total() (cycles int64, st redisStats) {
	st = redisStats{commands: map[string]cmdStat{}}
	for _, x := range s.samples {
		cycles += x.cycles
		st = st.add(x.redis)
	}
	return cycles, st
}

// printCommands prints what Redis ran per cycle over every round of s,
// busiest first: how many commands a cycle costs shows round trips and
// script work that should not be there.
func printCommands(w io.Writer, s *series) {
	cycles, st := s.total()
	if cycles == 0 {
		return
	}
	names := make([]string, 0, len(st.commands))
	for n := range st.commands {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return st.commands[names[i]].usec > st.commands[names[j]].usec })
	parts := make([]string, 0, len(names))
	for _, n := range names {
		c := st.commands[n]
		parts = append(parts, fmt.Sprintf("%s %.2f (%.1f µs)", n, float64(c.calls)/float64(cycles), float64(c.usec)/float64(cycles)))
	}
	fmt.Fprintf(w, "  %s, per cycle: %s\n", s.name, strings.Join(parts, ", "))
}

var errNoCycles = errors.New("bench: no cycle completed")
