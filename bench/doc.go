// Package bench holds seatbroker's benchmarks (make bench). They run
// against a redis-server of their own, started by TestMain, so Redis's INFO
// figures count only what the benchmarks do. See docs/benchmarks.md.
package bench
