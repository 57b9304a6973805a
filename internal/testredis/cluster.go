package testredis

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Cluster is a small Redis Cluster of three masters on loopback.
type Cluster struct {
	Addrs []string
	cmds  []*exec.Cmd
	dir   string
}

// StartCluster starts a three-master Redis Cluster for t and stops it when
// t ends.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatal("redis-server is not installed: ", err)
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Fatal("redis-cli is not installed: ", err)
	}
	dir := t.TempDir()
	c := &Cluster{dir: dir}
	t.Cleanup(c.stop)
	for i := range 3 {
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		nodeDir := fmt.Sprintf("%s/n%d", dir, i)
		if err := os.MkdirAll(nodeDir, 0o755); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--cluster-enabled", "yes", "--cluster-config-file", nodeDir+"/nodes.conf",
			// a lost master is noticed in about a second, not 15
			"--cluster-node-timeout", "1000",
			"--save", "", "--appendonly", "no", "--dir", nodeDir, "--loglevel", "warning")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		c.cmds = append(c.cmds, cmd)
		addr := "127.0.0.1:" + strconv.Itoa(port)
		if !waitUp(addr) {
			t.Fatal("cluster node did not start")
		}
		c.Addrs = append(c.Addrs, addr)
	}
	args := append([]string{"--cluster", "create"}, c.Addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	// every node must see the whole cluster before the tests use it
	deadline := time.Now().Add(15 * time.Second)
	for _, addr := range c.Addrs {
		nc := redis.NewClient(&redis.Options{Addr: addr})
		for {
			info, err := nc.ClusterInfo(context.Background()).Result()
			if err == nil && containsOK(info) {
				break
			}
			if time.Now().After(deadline) {
				_ = nc.Close()
				t.Fatalf("cluster node %s never became ok: %v %s", addr, err, info)
			}
			time.Sleep(50 * time.Millisecond)
		}
		_ = nc.Close()
	}
	return c
}

func containsOK(info string) bool { return strings.Contains(info, "cluster_state:ok") }

// Client returns a cluster client, closed when t ends.
func (c *Cluster) Client(t testing.TB) *redis.ClusterClient {
	t.Helper()
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs})
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

// Kill stops node i at once, as a crash would.
func (c *Cluster) Kill(i int) {
	_ = c.cmds[i].Process.Kill()
}

func (c *Cluster) stop() {
	for _, cmd := range c.cmds {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
}

// SkewedClient returns a cluster client, closed when t ends, that sees
// node i's clock (its TIME replies) run i hours ahead (Skew), so that a
// test can tell which node a time was read on. Host clocks cannot be
// skewed in a test; scripts on a node still read its true clock.
func (c *Cluster) SkewedClient(t testing.TB) *redis.ClusterClient {
	t.Helper()
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs})
	cc.OnNewNode(func(n *redis.Client) { n.AddHook(skewedTime{c.Skew(n.Options().Addr)}) })
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

// Skew is how far ahead SkewedClient shows the clock of the node at addr.
func (c *Cluster) Skew(addr string) time.Duration {
	for i, a := range c.Addrs {
		if a == addr {
			return time.Duration(i) * time.Hour
		}
	}
	return 0
}

// skewedTime moves TIME replies by skew.
type skewedTime struct{ skew time.Duration }

func (h skewedTime) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h skewedTime) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (h skewedTime) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if tc, ok := cmd.(*redis.TimeCmd); ok && err == nil {
			tc.SetVal(tc.Val().Add(h.skew))
		}
		return err
	}
}
