// Package testredis starts a real, throwaway redis-server on a free
// loopback port for tests, and gives each test its own key prefix.
package testredis

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/seatbroker/seatbroker/internal/miniclock"
)

// Server is a running redis-server.
type Server struct {
	Addr string
	cmd  *exec.Cmd
	dir  string
	args []string // the command line, to restart it
}

var shared atomic.Pointer[Server]

// Main starts one redis-server for a test binary, runs the tests and stops
// the server. Call it from TestMain. With checks (goleak.Find, say), each
// runs after the tests pass and fails the binary when it reports an error.
func Main(m *testing.M, checks ...func() error) {
	srv, err := Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "testredis:", err)
		os.Exit(2)
	}
	shared.Store(srv)
	code := m.Run()
	if code == 0 {
		for _, check := range checks {
			if err := check(); err != nil {
				fmt.Fprintln(os.Stderr, "after the tests:", err)
				code = 1
			}
		}
	}
	srv.Stop()
	os.Exit(code)
}

// Start launches redis-server on a free loopback port, keeping nothing on
// disk.
func Start() (*Server, error) {
	return StartWith("--save", "", "--appendonly", "no")
}

// StartWith launches redis-server on a free loopback port with the given
// persistence settings (say "--appendonly", "yes"), in a folder of its own
// that Kill and Restart keep.
func StartWith(persistence ...string) (*Server, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("redis-server is not installed (apt-get install redis-server): the tests need a real one: %w", err)
	}
	dir, err := os.MkdirTemp("", "testredis")
	if err != nil {
		return nil, err
	}
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		args := append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--dir", dir, "--daemonize", "no", "--loglevel", "warning", "--maxclients", "4000"}, persistence...)
		s := &Server{Addr: "127.0.0.1:" + strconv.Itoa(port), dir: dir, args: append([]string{bin}, args...)}
		if s.start() == nil {
			return s, nil
		}
	}
	_ = os.RemoveAll(dir)
	return nil, fmt.Errorf("redis-server did not start")
}

func (s *Server) start() error {
	cmd := exec.Command(s.args[0], s.args[1:]...)
	if err := cmd.Start(); err != nil {
		return err
	}
	if !waitUp(s.Addr) {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return fmt.Errorf("redis-server did not start on %s", s.Addr)
	}
	s.cmd = cmd
	return nil
}

// Kill stops the server as a crash would (SIGKILL: what it had not
// written to disk is lost), keeping its folder for Restart.
func (s *Server) Kill() {
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
}

// Restart starts a killed server again, on its port, from what it left on
// disk.
func (s *Server) Restart() error { return s.start() }

// Stop kills the server and removes its folder.
func (s *Server) Stop() {
	s.Kill()
	_ = os.RemoveAll(s.dir)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func waitUp(addr string) bool {
	// no retries: go-redis tries a LOADING reply again until it gives up
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	for i := 0; i < 100; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		// a server that loads its data answers, refusing what it cannot do
		if err == nil || strings.HasPrefix(err.Error(), "LOADING") {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// Addr returns the address of the server Main started.
func Addr(t testing.TB) string {
	t.Helper()
	srv := shared.Load()
	if srv == nil {
		t.Fatal("testredis: call testredis.Main from TestMain")
	}
	return srv.Addr
}

// Client returns a client of the shared server, closed when t ends.
func Client(t testing.TB) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: Addr(t), PoolSize: 64})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Prefix returns a key prefix no other test uses.
func Prefix(t testing.TB) string {
	t.Helper()
	return "t" + strings.ReplaceAll(uuid.NewString()[:13], "-", "") + ":v1"
}

// Backend is a Redis to run a conformance suite against.
type Backend struct {
	Name   string
	Client func(t testing.TB) redis.UniversalClient
}

// Backends returns the real redis-server and the in-process one, which runs
// the same suite only to keep the demo mode honest.
func Backends() []Backend {
	return []Backend{
		{Name: "redis", Client: func(t testing.TB) redis.UniversalClient { return Client(t) }},
		{Name: "miniredis", Client: func(t testing.TB) redis.UniversalClient {
			m := miniredis.RunT(t)
			// keys expire as time passes, as in Redis (and the demo mode)
			t.Cleanup(miniclock.Follow(m, 20*time.Millisecond))
			c := redis.NewClient(&redis.Options{Addr: m.Addr()})
			t.Cleanup(func() { _ = c.Close() })
			return c
		}},
	}
}
