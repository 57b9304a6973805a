//go:build measure

package httpapi_test

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/seatbroker/seatbroker/broker"
	"github.com/seatbroker/seatbroker/broker/protocol"
	"github.com/seatbroker/seatbroker/broker/server"
)

// TestMeasureOneBigAccount is a measurement run by hand, not a check:
// (a build tag keeps it out of make test, which runs every test it
// compiles and allows no skip)
// SEATBROKER_SCALE=50000 go test -tags measure -run TestMeasureOneBigAccount -v ./broker/httpapi/
// It fills one account with that many sessions (half of them ended) of
// a tenth as many users and prints what each route costs Redis.
func TestMeasureOneBigAccount(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("SEATBROKER_SCALE"))
	if n == 0 {
		n = 50000
	}
	e := newEnv(t, server.Options{})
	a := e.account(broker.MaxSeats, false)
	nu := n / 10
	users := make([]protocol.User, nu)
	t0 := time.Now()
	for i := range users {
		u, err := e.b.AddUser(e.ctx, a.op, broker.UserSpec{Name: fmt.Sprintf("user%05d", i)})
		require.NoError(t, err)
		users[i] = u
	}
	t.Logf("%d users in %v", nu, time.Since(t0))
	t0 = time.Now()
	var wg sync.WaitGroup
	ids := make([]string, n)
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 32 {
				u := users[i%nu]
				g, err := e.b.Open(e.ctx, broker.OpenRequest{Account: a.id, UserID: u.ID, DeviceID: fmt.Sprintf("d%d", i)})
				if err != nil {
					t.Error(err)
					return
				}
				ids[i] = g.Session.ID
				if i%2 == 1 {
					if _, err := e.b.CloseSession(e.ctx, a.id, u.ID, u.Name, g.Session.ID, ""); err != nil {
						t.Error(err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("%d sessions (half ended) in %v", n, time.Since(t0))
	mem, _ := e.rc.MemoryUsage(e.ctx, e.prefix+":{"+a.id+"}:sess").Result()
	t.Logf("sessions hash: %d bytes", mem)

	measure := func(name string, fn func()) {
		require.NoError(t, e.rc.ConfigResetStat(e.ctx).Err())
		require.NoError(t, e.rc.ConfigSet(e.ctx, "slowlog-log-slower-than", "0").Err())
		require.NoError(t, e.rc.Do(e.ctx, "SLOWLOG", "RESET").Err())
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		t0 := time.Now()
		fn()
		el := time.Since(t0)
		runtime.ReadMemStats(&m1)
		logs, _ := e.rc.SlowLogGet(e.ctx, 200).Result()
		var worst time.Duration
		var worstCmd string
		for _, l := range logs {
			if l.Duration > worst && !strings.EqualFold(l.Args[0], "slowlog") {
				worst, worstCmd = l.Duration, strings.Join(l.Args[:min(2, len(l.Args))], " ")
			}
		}
		info, _ := e.rc.Info(e.ctx, "commandstats").Result()
		var cmds []string
		sc := bufio.NewScanner(strings.NewReader(info))
		for sc.Scan() {
			ln := sc.Text()
			if strings.HasPrefix(ln, "cmdstat_") && !strings.Contains(ln, "slowlog") && !strings.Contains(ln, "config") && !strings.Contains(ln, "info") {
				cmds = append(cmds, ln)
			}
		}
		t.Logf("%s: %v wall; %d MB allocated; longest Redis command %v (%s)\n  %s", name, el, (m1.TotalAlloc-m0.TotalAlloc)>>20, worst, worstCmd, strings.Join(cmds, "\n  "))
	}
	measure("GET /sessions?limit=1000", func() {
		r := e.request(http.MethodGet, "/api/v1/sessions?limit=1000", a.token, nil)
		require.Equal(t, 200, r.status)
		t.Logf("  %d bytes", len(r.body))
	})
	measure("GET /sessions?limit=1000 (again)", func() {
		r := e.request(http.MethodGet, "/api/v1/sessions?limit=1000", a.token, nil)
		require.Equal(t, 200, r.status)
	})
	measure("GET /overview", func() {
		r := e.request(http.MethodGet, "/api/v1/overview", a.token, nil)
		require.Equal(t, 200, r.status)
	})
	measure("GET /users", func() {
		r := e.request(http.MethodGet, "/api/v1/users", a.token, nil)
		require.Equal(t, 200, r.status)
		t.Logf("  %d bytes", len(r.body))
	})
	var live []string
	for i := 0; i < n && len(live) < 1000; i += 2 {
		live = append(live, ids[i])
	}
	measure("POST /sessions/end 500", func() {
		r := e.request(http.MethodPost, "/api/v1/sessions/end", a.token, map[string]any{"session_ids": live[:500]})
		require.Equal(t, 200, r.status, string(r.body))
	})
	var more []string
	for i := 2000; i < n && len(more) < 1000; i += 2 {
		more = append(more, ids[i])
	}
	measure("POST /sessions/end 1000", func() {
		r := e.request(http.MethodPost, "/api/v1/sessions/end", a.token, map[string]any{"session_ids": more})
		t.Logf("  status %d", r.status)
	})
	measure("block a user", func() {
		r := e.request(http.MethodPost, "/api/v1/users/"+users[2].ID+"/block", a.token, nil)
		require.Equal(t, 200, r.status, string(r.body))
	})
	measure("one open", func() {
		_, err := e.b.Open(e.ctx, broker.OpenRequest{Account: a.id, UserID: users[3].ID, DeviceID: "x"})
		require.NoError(t, err)
	})
}
