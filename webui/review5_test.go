package webui_test

// Review 5: the License Usage page against SPEC.md, docs/page.md and
// docs/api.md. Each test here shows a behaviour that differs from them.
// Run: SEATBROKER_REQUIRE_BROWSER=1 go test ./webui/ -run TestReview5 -count=1 -v

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strconv"
	"strings"
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

// newSite5 is newSite with a configurable broker and a PPU switch.
func newSite5(t *testing.T, spec siteSpec, ppu bool, tune func(*broker.Config)) *site {
	t.Helper()
	rc := testredis.Client(t)
	cfg := broker.DefaultConfig()
	cfg.Prefix = testredis.Prefix(t)
	cfg.Notice = notice
	cfg.ReapInterval = 50 * time.Millisecond
	if tune != nil {
		tune(&cfg)
	}
	web := startBroker(t, rc, cfg)
	desk := startBroker(t, rc, cfg)
	srv := httptest.NewServer(server.New(web, server.Options{}))
	t.Cleanup(srv.Close)
	ctx := context.Background()
	acct := "a" + uuid.NewString()[:8]
	owner, err := web.Bootstrap(ctx, broker.AccountSpec{ID: acct, Name: spec.acctName, Seats: spec.seats,
		OwnerName: "owner", PPUEnabled: ppu}, password)
	require.NoError(t, err)
	op, err := web.PrincipalFor(ctx, acct, owner.ID)
	require.NoError(t, err)
	s := &site{t: t, ctx: ctx, web: web, desk: desk, url: srv.URL, acct: acct, owner: op,
		users: map[string]protocol.User{"owner": owner}}
	for _, us := range spec.users {
		u, err := web.AddUser(ctx, op, us)
		require.NoError(t, err)
		require.NoError(t, web.SetPassword(ctx, op, u.ID, password))
		s.users[us.Name] = u
	}
	return s
}

// outageSite is a node whose Redis link goes through a cutter, with one
// account (owner only) and a session of the owner.
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

// SPEC "Who may see and do what" / "Invariants" 6, docs/api.md "Signing
// in": any token of a blocked user stops working on the next request, and
// the page's stream is closed. The page must then stop showing the
// account's sessions (sign the user out). It gets 403 user_blocked from
// /api/v1/me, treats only 401 as signed out, and keeps showing the frozen
// rows (and End Selected Sessions) forever, reconnecting in a loop.
func TestReview5BlockedViewerKeepsSeeingTheSessions(t *testing.T) {
	t.Parallel()
	s := newSite(t, siteSpec{seats: 5, users: []broker.UserSpec{{Name: "alice"}, {Name: "bob"}}})
	b1 := s.open("bob", "bob-pc", false)
	p := s.tab(browser(t), 1280, 900)
	p.signIn("/", s.acct, "alice")
	p.waitJS(fmt.Sprintf(`!!document.querySelector(%q)`, rowSel(b1.Session.ID)), 5*time.Second, "alice sees bob's session")

	_, err := s.web.BlockUser(s.ctx, s.owner, s.users["alice"].ID, true)
	require.NoError(t, err)
	// Within a few seconds (the stream closes within a second, the page
	// reconnects after ~1 s and asks /me) the page must no longer show the
	// account's sessions to the blocked user.
	_, werr := chromedp.Run(p.ctx, chromedp.Poll[bool](
		`!document.getElementById('view-signin').hidden || document.querySelectorAll('#sessions-body tr').length === 0`,
		chromedp.WithPollingTimeout(8*time.Second), chromedp.WithPollingInterval(50*time.Millisecond)))
	// A new session, opened now, never arrives either: the page is frozen.
	b2 := s.open("bob", "bob-laptop", false)
	time.Sleep(1500 * time.Millisecond)
	assert.NoError(t, werr, "8 s after alice was blocked her page still shows the account's sessions: rows %v, sign-in shown %v",
		p.rowIDs(), eval[bool](p, `!document.getElementById('view-signin').hidden`))
	assert.False(t, eval[bool](p, fmt.Sprintf(`!!document.querySelector(%q)`, rowSel(b2.Session.ID))), "the stream is dead anyway")
}

// SPEC "The License Usage page": the overview (PPU balance) updates by
// itself within a second of any change. A PPU minute billed by the timer
// (no heartbeat, no other change) lowers the balance in Redis, but
// publishes no event, so the page's "Pay-per-use balance" stays where it
// was.
func TestReview5PPUBalanceOnThePageFollowsBilling(t *testing.T) {
	t.Parallel()
	s := newSite5(t, siteSpec{seats: 0, users: []broker.UserSpec{{Name: "alice"}}}, true, func(c *broker.Config) {
		c.Minute = time.Second
	})
	_, err := s.web.TopUp(s.ctx, s.owner, 100, "", "review5")
	require.NoError(t, err)
	g := s.open("alice", "alice-pc", false)
	require.Equal(t, protocol.KindPPU, g.Session.Kind)

	p := s.tab(browser(t), 1280, 900)
	p.signIn("/#license", s.acct, "owner")
	p.waitJS(`/^\d+ min$/.test(document.getElementById('ov-ppu-balance').textContent)`, 5*time.Second, "the balance shows")
	shown := func() int {
		n, err := strconv.Atoi(strings.TrimSuffix(p.text("#ov-ppu-balance"), " min"))
		require.NoError(t, err)
		return n
	}
	first := shown()
	// Wait until Redis has billed three more minutes.
	var bal int64
	require.Eventually(t, func() bool {
		o, err := s.web.OverviewOf(s.ctx, s.acct)
		require.NoError(t, err)
		bal = o.PPUBalance
		return bal <= int64(first)-3
	}, 10*time.Second, 50*time.Millisecond, "billing runs")
	_, werr := chromedp.Run(p.ctx, chromedp.Poll[bool](
		fmt.Sprintf(`parseInt(document.getElementById('ov-ppu-balance').textContent) <= %d`, bal),
		chromedp.WithPollingTimeout(1500*time.Millisecond), chromedp.WithPollingInterval(20*time.Millisecond)))
	assert.NoError(t, werr, "Redis's balance is %d, the page still shows %d min", bal, shown())
}

// docs/page.md, "Unavailable": the page says the node is unavailable and
// re-fetches when it is ready again; SPEC: the broker keeps serving what it
// can. A page (re)loaded while Redis is unreachable shows the sign-in form
// (its /api/v1/me got 503) and stays there after Redis is back, although
// its cookie is valid: checkReady re-fetches only "if (st.me)".
func TestReview5PageLoadedDuringOutageRecoversSignedIn(t *testing.T) {
	t.Parallel()
	s, line := outageSite(t)
	p := s.tab(browser(t), 1280, 900)
	p.signIn("/", s.acct, "owner")
	p.waitJS(`document.querySelectorAll('#sessions-body tr').length === 1`, 5*time.Second, "the owner's session")

	line.setCut(true)
	p.do(chromedp.Reload()) // a reload while the database is away
	p.waitJS(`document.body.dataset.ready === 'true' && !document.getElementById('banner').hidden`, 10*time.Second, "the banner")
	t.Logf("during the outage: sign-in shown %v, nav shown %v", eval[bool](p, `!document.getElementById('view-signin').hidden`),
		eval[bool](p, `!document.getElementById('nav').hidden`))
	line.setCut(false)
	p.waitJS(`document.getElementById('banner').hidden`, 10*time.Second, "the banner goes when the database is back")
	_, werr := chromedp.Run(p.ctx, chromedp.Poll[bool](
		`document.getElementById('nav').hidden === false && document.querySelectorAll('#sessions-body tr').length === 1`,
		chromedp.WithPollingTimeout(5*time.Second), chromedp.WithPollingInterval(50*time.Millisecond)))
	assert.NoError(t, werr, "the database is back and the cookie is valid, but the page still asks to sign in (sign-in shown: %v)",
		eval[bool](p, `!document.getElementById('view-signin').hidden`))
}

// docs/page.md, "Unavailable": "The page checks /readyz every 2 s while
// the banner shows". It checks every 3 s (api.js READY_EVERY = 3000).
func TestReview5ReadyzEveryTwoSecondsWhileTheBannerShows(t *testing.T) {
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
	require.NotEmpty(t, gaps)
	for _, g := range gaps {
		assert.LessOrEqual(t, g, 2300.0, "gaps between /readyz checks while the banner shows (ms): %v", gaps)
	}
}

// docs/page.md, "Views": Settings and Users are neither linked nor shown
// to members; the stream sends resync when the viewer's role changes. An
// admin demoted to member while on Users loses the link, but the Users
// view (with the account's user list) stays on screen: applyMe does not
// route again.
func TestReview5DemotedAdminNoLongerSeesUsers(t *testing.T) {
	t.Parallel()
	s := newSite(t, siteSpec{seats: 5, users: []broker.UserSpec{{Name: "admin", Role: protocol.RoleAdmin}, {Name: "alice"}}})
	p := s.tab(browser(t), 1280, 900)
	p.signIn("/#users", s.acct, "admin")
	p.waitJS(`!document.getElementById('view-users').hidden && document.querySelectorAll('#users-body tr').length === 3`,
		5*time.Second, "the admin on Users")
	member := protocol.RoleMember
	_, err := s.web.UpdateUser(s.ctx, s.owner, s.users["admin"].ID, broker.UserPatch{Role: &member})
	require.NoError(t, err)
	p.waitJS(`document.querySelector('#nav a[href="#users"]').hidden`, 5*time.Second, "the resync hid the link")
	time.Sleep(500 * time.Millisecond)
	assert.True(t, eval[bool](p, `document.getElementById('view-users').hidden`),
		"a member (demoted) still sees the Users view with %d users listed", eval[int](p, `document.querySelectorAll('#users-body tr').length`))
}

// docs/page.md "End Selected Sessions asks in a dialog"; the dialog says
// running sessions close in N seconds, N the account's notice (SPEC: the
// deadline, default 30 s). After an admin changes notice_sec, the page's
// dialog keeps the notice read at sign-in: no event brings the settings
// (an account event resyncs only when permissions changed).
func TestReview5ConfirmationTellsTheCurrentNotice(t *testing.T) {
	t.Parallel()
	s := newSite(t, siteSpec{seats: 5, users: []broker.UserSpec{{Name: "alice"}}})
	g := s.open("alice", "alice-pc", false)
	p := s.tab(browser(t), 1280, 900)
	p.signIn("/", s.acct, "owner")
	p.waitJS(fmt.Sprintf(`!!document.querySelector(%q)`, rowSel(g.Session.ID)), 5*time.Second, "alice's row")
	twenty := int64(20)
	_, err := s.web.UpdateSettings(s.ctx, s.owner, broker.SettingsPatch{NoticeSec: &twenty})
	require.NoError(t, err)
	time.Sleep(1500 * time.Millisecond) // "within a second of any change"
	p.click(rowSel(g.Session.ID) + " input[type=checkbox]")
	p.click("#end-selected")
	p.waitJS(`document.getElementById('confirm').open`, 2*time.Second, "confirmation asked")
	text := p.text("#confirm-text")
	p.click("#confirm-ok")
	p.waitJS(fmt.Sprintf(`/terminating · \d+ s/.test(document.querySelector(%q).textContent)`, rowSel(g.Session.ID)+" td.state"),
		3*time.Second, "it counts down")
	left := p.secondsLeft(g.Session.ID)
	assert.Contains(t, text, "close in 20 seconds", "the dialog promised the old notice; the countdown shows %d s", left)
}
