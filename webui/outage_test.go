package webui_test

import (
	"context"
	"io"
	"net"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seatbroker/seatbroker/broker"
	"github.com/seatbroker/seatbroker/broker/protocol"
	"github.com/seatbroker/seatbroker/broker/server"
	"github.com/seatbroker/seatbroker/internal/testredis"
)

// cutter is a loopback TCP proxy to Redis that the test can cut and mend:
// a node behind it loses its database and gets it back.
type cutter struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	cut    bool                  // guarded by mu
	conns  map[net.Conn]struct{} // guarded by mu
	wg     sync.WaitGroup
}

func newCutter(t *testing.T, target string) *cutter {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	c := &cutter{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	c.wg.Add(1)
	go c.accept()
	t.Cleanup(func() { _ = ln.Close(); c.setCut(true); c.wg.Wait() })
	return c
}

func (c *cutter) accept() {
	defer c.wg.Done()
	for {
		in, err := c.ln.Accept()
		if err != nil {
			return
		}
		c.mu.Lock()
		if c.cut {
			c.mu.Unlock()
			_ = in.Close()
			continue
		}
		out, err := net.Dial("tcp", c.target)
		if err != nil {
			c.mu.Unlock()
			_ = in.Close()
			continue
		}
		c.conns[in], c.conns[out] = struct{}{}, struct{}{}
		c.mu.Unlock()
		c.wg.Add(2)
		go c.pipe(in, out)
		go c.pipe(out, in)
	}
}

func (c *cutter) pipe(dst, src net.Conn) {
	defer c.wg.Done()
	_, _ = io.Copy(dst, src)
	_ = dst.Close()
	_ = src.Close()
}

// setCut cuts (closing every open connection) or mends the line.
func (c *cutter) setCut(cut bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cut = cut
	if cut {
		for conn := range c.conns {
			_ = conn.Close()
		}
		clear(c.conns)
	}
}

// outageSite is a node whose Redis link goes through a cutter, with one
// account (owner only, two seats) and a session of the owner.
func outageSite(t *testing.T) (*site, *cutter) {
	t.Helper()
	line := newCutter(t, testredis.Addr(t))
	rc := redis.NewClient(&redis.Options{Addr: line.ln.Addr().String(), MaxRetries: -1,
		DialTimeout: 200 * time.Millisecond, ReadTimeout: 500 * time.Millisecond, WriteTimeout: 500 * time.Millisecond})
	t.Cleanup(func() { _ = rc.Close() })
	cfg := broker.DefaultConfig()
	cfg.Prefix = testredis.Prefix(t)
	web := startBroker(t, rc, cfg)
	srv := httptest.NewServer(server.New(web, server.Options{}))
	t.Cleanup(srv.Close)
	ctx := context.Background()
	acct := "a" + uuid.NewString()[:8]
	owner, err := web.Bootstrap(ctx, broker.AccountSpec{ID: acct, Seats: 2, OwnerName: "owner"}, password)
	require.NoError(t, err)
	s := &site{t: t, ctx: ctx, web: web, url: srv.URL, acct: acct, users: map[string]protocol.User{"owner": owner}}
	_, err = web.Open(ctx, broker.OpenRequest{Account: acct, UserID: owner.ID, DeviceID: "owner-pc", DeviceName: "owner-pc"})
	require.NoError(t, err)
	return s, line
}

func TestPageSaysWhenTheNodeLosesItsDatabase(t *testing.T) {
	t.Parallel()
	s, line := outageSite(t)

	p := s.tab(browser(t), 1280, 900)
	p.signIn("/", s.acct, "owner")
	p.waitJS(`document.getElementById('ov-seats').textContent === '2'`, 5*time.Second, "the numbers")
	require.True(t, eval[bool](p, `document.getElementById('banner').hidden`), "no banner while all is well")

	line.setCut(true)
	p.waitJS(`!document.getElementById('banner').hidden`, 10*time.Second, "the banner says the database is unreachable")
	require.Contains(t, p.text("#banner"), "cannot reach its database")
	require.Equal(t, "2", p.text("#ov-seats"), "the last known numbers stay")
	p.screenshot("usage-unavailable")

	line.setCut(false)
	p.waitJS(`document.getElementById('banner').hidden`, 10*time.Second, "the banner goes when the database is back")
}

// A page (re)loaded while the node cannot reach Redis cannot tell whether
// its cookie is good: it shows the banner, and once the node is ready again
// it asks /api/v1/me again and opens signed in, on the view the address
// named.
func TestPageLoadedDuringAnOutageSignsInWhenTheNodeIsBack(t *testing.T) {
	t.Parallel()
	s, line := outageSite(t)
	p := s.tab(browser(t), 1280, 900)
	p.signIn("/#license", s.acct, "owner")
	p.waitJS(`document.getElementById('ov-in-use').textContent === '1'`, 5*time.Second, "the owner's session counts")

	line.setCut(true)
	p.do(chromedp.Reload())
	p.waitJS(`document.body.dataset.ready === 'true' && !document.getElementById('banner').hidden`, 10*time.Second, "the banner")
	assert.True(t, eval[bool](p, `document.getElementById('nav').hidden`), "not signed in yet")

	line.setCut(false)
	p.waitJS(`document.getElementById('banner').hidden`, 10*time.Second, "the banner goes when the database is back")
	p.waitJS(`document.getElementById('nav').hidden === false && !document.getElementById('view-license').hidden`,
		5*time.Second, "signed in again by the cookie, on the view the address named")
	assert.True(t, eval[bool](p, `document.getElementById('view-signin').hidden`))
	p.waitJS(`document.getElementById('ov-in-use').textContent === '1'`, 5*time.Second, "the numbers")
	p.goTo("#usage")
	p.waitJS(`document.querySelectorAll('#sessions-body tr').length === 1`, 5*time.Second, "the owner's session")
}

// docs/page.md, "Unavailable": the page checks /readyz every 2 s while the
// banner shows.
func TestReadyzIsCheckedEveryTwoSecondsWhileTheBannerShows(t *testing.T) {
	t.Parallel()
	s, line := outageSite(t)
	p := s.tab(browser(t), 1280, 900)
	p.signIn("/", s.acct, "owner")
	p.waitJS(`document.querySelectorAll('#sessions-body tr').length === 1`, 5*time.Second, "the owner's session")
	line.setCut(true)
	p.waitJS(`!document.getElementById('banner').hidden`, 10*time.Second, "the banner")
	eval[bool](p, `(() => {
		window.__readyz = [];
		const f = window.fetch;
		window.fetch = function (u) {
			if (String(u).includes('/readyz')) window.__readyz.push(performance.now());
			return f.apply(this, arguments);
		};
		return true;
	})()`)
	time.Sleep(7 * time.Second)
	gaps := eval[[]float64](p, `window.__readyz.slice(1).map((t, i) => t - window.__readyz[i])`)
	line.setCut(false)
	require.GreaterOrEqual(t, len(gaps), 2, "checks while the banner shows")
	for _, g := range gaps {
		assert.LessOrEqual(t, g, 2300.0, "gaps between /readyz checks while the banner shows (ms): %v", gaps)
	}
}
