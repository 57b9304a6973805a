package testredis

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// StartSentinel starts a Redis Sentinel on a free loopback port that
// monitors master (host:port) under the name name, stopped when t ends,
// and returns its address. A sentinel answers PING before it has asked
// the master, but names the master from its configuration at once.
func StartSentinel(t testing.TB, name, master string) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server is not installed (apt-get install redis-server): %v", err)
	}
	i := strings.LastIndex(master, ":")
	if i < 0 {
		t.Fatalf("master %q is not host:port", master)
	}
	host, port := master[:i], master[i+1:]
	dir := t.TempDir()
	for range 5 {
		p, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		conf := filepath.Join(dir, "sentinel-"+strconv.Itoa(p)+".conf")
		body := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nsentinel monitor %s %s %s 1\n", p, dir, name, host, port)
		if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, conf, "--sentinel", "--loglevel", "warning")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		addr := "127.0.0.1:" + strconv.Itoa(p)
		if waitUp(addr) {
			t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
			return addr
		}
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
	t.Fatal("redis sentinel did not start")
	return ""
}
