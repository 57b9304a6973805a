package webui_test

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seatbroker/seatbroker/broker"
	"github.com/seatbroker/seatbroker/broker/protocol"
)

var countdown = regexp.MustCompile(`terminating · (\d+) s`)

// secondsLeft reads the countdown of a terminating row (-1: none shown).
func (p *page) secondsLeft(sid string) int {
	p.t.Helper()
	m := countdown.FindStringSubmatch(p.text(rowSel(sid) + " td.state"))
	if m == nil {
		return -1
	}
	n, err := strconv.Atoi(m[1])
	require.NoError(p.t, err)
	return n
}

func TestAdminEndsSelectedSessionsTheyCountDownAndLeave(t *testing.T) {
	t.Parallel()
	s := newSite(t, siteSpec{seats: 3, users: []broker.UserSpec{
		{Name: "admin", Role: protocol.RoleAdmin}, {Name: "alice"}, {Name: "bob"}, {Name: "carol"},
	}})
	// Desktop clients on the other node: alice works on her desktop, bob
	// generated a code that his customer's remote client joined, carol
	// works too. The account's three licenses are all in use.
	alice := s.open("alice", "alice-pc", false)
	bob := s.open("bob", "bob-pc", true)
	joined, _, err := s.desk.Join(s.ctx, bob.Session.Code, "198.51.100.7")
	require.NoError(t, err)
	require.Equal(t, protocol.StateActive, joined.State)
	carol := s.open("carol", "carol-pc", false)
	pageURL := s.deniedPageURL("carol", "carol-laptop") // a fourth seat is refused
	assert.Equal(t, "/#usage", pageURL)

	bctx := browser(t)
	p := s.tab(bctx, 1280, 900)
	p.signIn(pageURL, s.acct, "admin")
	assert.Equal(t, "#usage", eval[string](p, `location.hash`))
	assert.True(t, eval[bool](p, `!document.getElementById('view-usage').hidden`), "a denied client's address opens License Usage")
	p.waitJS(`document.querySelectorAll('#sessions-body tr').length === 3`, 5*time.Second, "three sessions listed")
	assert.ElementsMatch(t, []string{alice.Session.ID, bob.Session.ID, carol.Session.ID}, p.rowIDs())
	for _, id := range p.rowIDs() {
		assert.True(t, p.hasBox(id), "an admin may end every session")
	}
	p.waitJS(`document.getElementById('ov-in-use').textContent === '3'`, 3*time.Second, "overview in use")
	assert.Equal(t, "3", p.text("#ov-seats"))
	assert.Equal(t, "0", p.text("#ov-free"))
	assert.Equal(t, "alice", p.text(rowSel(alice.Session.ID)+" td.user"))
	assert.Equal(t, "alice-pc.example", p.text(rowSel(alice.Session.ID)+" td.device"))
	assert.Equal(t, "Prepaid", p.text(rowSel(alice.Session.ID)+" td.kind"))
	eval[int](p, `window.__sameDocument = 1`) // a reload would lose it

	// Select two, End Selected Sessions, confirm.
	p.click(rowSel(alice.Session.ID) + " input[type=checkbox]")
	p.click(rowSel(bob.Session.ID) + " input[type=checkbox]")
	assert.Equal(t, "2 sessions selected", p.text("#selected-count"))
	p.click("#end-selected")
	p.waitJS(`document.getElementById('confirm').open`, 2*time.Second, "confirmation asked")
	assert.Equal(t, "End 2 sessions?", p.text("#confirm-title"))
	p.screenshot("confirm")
	p.click("#confirm-ok")

	// The rows count down on their own...
	p.waitJS(fmt.Sprintf(`/terminating · \d+ s/.test(document.querySelector(%q).textContent)`, rowSel(alice.Session.ID)+" td.state"),
		2*time.Second, "alice's row shows the countdown")
	first := p.secondsLeft(alice.Session.ID)

	// The desktop clients get the notice with their next heartbeat.
	for _, c := range []struct {
		user string
		g    protocol.Grant
	}{{"alice", alice}, {"bob", bob}} {
		res, err := s.desk.Renew(s.ctx, s.acct, s.users[c.user].ID, []broker.SessionRef{{ID: c.g.Session.ID, Fence: c.g.Fence}})
		require.NoError(t, err)
		require.Len(t, res, 1)
		assert.Equal(t, protocol.StateTerminating, res[0].Session.State, c.user)
		assert.Positive(t, res[0].Session.SecondsLeft, c.user)
		assert.Equal(t, protocol.ReasonTerminated, res[0].Session.Reason, c.user)
	}

	require.Positive(t, first)
	assert.False(t, p.hasBox(bob.Session.ID) && eval[bool](p, fmt.Sprintf(`!document.querySelector(%q).disabled`, rowSel(bob.Session.ID)+" input")),
		"a terminating row cannot be selected again")
	p.screenshot("usage-desktop-terminating")
	p.waitJS(fmt.Sprintf(`(m => m && +m[1] < %d)(/terminating · (\d+) s/.exec(document.querySelector(%q).textContent))`, first, rowSel(alice.Session.ID)+" td.state"),
		3*time.Second, "the countdown goes down")
	// ...and leave when the sessions end; carol's stays.
	p.waitJS(fmt.Sprintf(`!document.querySelector(%q) && !document.querySelector(%q)`, rowSel(alice.Session.ID), rowSel(bob.Session.ID)),
		notice+3*time.Second, "ended rows leave")
	assert.Equal(t, []string{carol.Session.ID}, p.rowIDs())
	// The overview follows.
	p.waitJS(`document.getElementById('ov-in-use').textContent === '1' && document.getElementById('ov-free').textContent === '2'`,
		2*time.Second, "the overview shows the freed seats")

	// A change anywhere shows up by itself: a new session on the other node.
	start := time.Now()
	dan := s.open("alice", "alice-laptop", true)
	p.waitJS(fmt.Sprintf(`!!document.querySelector(%q)`, rowSel(dan.Session.ID)), 2*time.Second, "a new session appears")
	t.Logf("a session opened on another node showed on the page after %v", time.Since(start).Round(time.Millisecond))
	assert.Equal(t, "standby", p.text(rowSel(dan.Session.ID)+" td.state"))
	assert.Equal(t, dan.Session.Code, p.text(rowSel(dan.Session.ID)+" td.code"))
	p.waitJS(`document.getElementById('ov-in-use').textContent === '2'`, 2*time.Second, "the overview counts it")
	assert.Equal(t, 1, eval[int](p, `window.__sameDocument`), "pushed, not reloaded")
}

// The dialog says running sessions close in N seconds, N the account's
// notice as it is when the dialog opens, not as it was at sign-in: no
// event brings the settings.
func TestEndDialogTellsTheCurrentNotice(t *testing.T) {
	t.Parallel()
	s := newSite(t, siteSpec{seats: 5, users: []broker.UserSpec{{Name: "alice"}}})
	g := s.open("alice", "alice-pc", false)
	p := s.tab(browser(t), 1280, 900)
	p.signIn("/", s.acct, "owner")
	p.waitJS(fmt.Sprintf(`!!document.querySelector(%q)`, rowSel(g.Session.ID)), 5*time.Second, "alice's row")
	twenty := int64(20)
	_, err := s.web.UpdateSettings(s.ctx, s.owner, broker.SettingsPatch{NoticeSec: &twenty})
	require.NoError(t, err)
	p.click(rowSel(g.Session.ID) + " input[type=checkbox]")
	p.click("#end-selected")
	p.waitJS(`document.getElementById('confirm').open`, 2*time.Second, "confirmation asked")
	text := p.text("#confirm-text")
	p.click("#confirm-ok")
	p.waitJS(fmt.Sprintf(`/terminating · \d+ s/.test(document.querySelector(%q).textContent)`, rowSel(g.Session.ID)+" td.state"),
		3*time.Second, "it counts down")
	left := p.secondsLeft(g.Session.ID)
	assert.Contains(t, text, "close in 20 seconds", "the countdown shows %d s", left)
	assert.InDelta(t, 20, left, 2, "the notice the dialog promised")
}

func TestMemberSeesOnlyTheSessionsTheRulesShow(t *testing.T) {
	t.Parallel()
	own := protocol.ScopeOwn
	// New accounts: view domain, control own. dave is narrowed to own.
	s := newSite(t, siteSpec{seats: 10, users: []broker.UserSpec{
		{Name: "alice"}, {Name: "bob"}, {Name: "dave", View: own, Control: own},
	}})
	a1 := s.open("alice", "a1", false)
	a2 := s.open("alice", "a2", false)
	s.pause("alice", a2.Session.ID)
	b1 := s.open("bob", "b1", false)
	b2 := s.open("bob", "b2", false)
	s.pause("bob", b2.Session.ID)
	d1 := s.open("dave", "d1", false)

	bctx := browser(t)
	alice := s.tab(bctx, 1280, 900)
	alice.signIn("/", s.acct, "alice")
	dave := s.tab(bctx, 1280, 900)
	dave.signIn("/", s.acct, "dave")

	alice.waitJS(`document.querySelectorAll('#sessions-body tr').length === 4`, 5*time.Second, "alice's list")
	assert.ElementsMatch(t, []string{a1.Session.ID, a2.Session.ID, b1.Session.ID, d1.Session.ID}, alice.rowIDs(),
		"view domain: all but another user's paused session")
	assert.True(t, alice.hasBox(a1.Session.ID))
	assert.True(t, alice.hasBox(a2.Session.ID), "her own paused session is hers to end")
	assert.False(t, alice.hasBox(b1.Session.ID), "control own: no checkbox on bob's")
	assert.False(t, alice.hasBox(d1.Session.ID), "control own: no checkbox on dave's")
	assert.Equal(t, "paused", alice.text(rowSel(a2.Session.ID)+" td.state"))
	assert.False(t, eval[bool](alice, `!document.querySelector('#nav a[href="#users"]').hidden`), "members see no Users tab")

	dave.waitJS(`document.querySelectorAll('#sessions-body tr').length === 1`, 5*time.Second, "dave's list")
	assert.Equal(t, []string{d1.Session.ID}, dave.rowIDs(), "view own: only his own")
	assert.True(t, dave.hasBox(d1.Session.ID))

	// Bob pauses: his session leaves alice's page; he resumes: it is back.
	s.pause("bob", b1.Session.ID)
	alice.waitJS(fmt.Sprintf(`!document.querySelector(%q)`, rowSel(b1.Session.ID)), 3*time.Second, "a paused session of another user disappears")
	_, err := s.desk.Resume(s.ctx, s.acct, s.users["bob"].ID, b1.Session.ID)
	require.NoError(t, err)
	alice.waitJS(fmt.Sprintf(`!!document.querySelector(%q)`, rowSel(b1.Session.ID)), 3*time.Second, "resumed, it is back")
	assert.NotContains(t, alice.rowIDs(), b2.Session.ID)
	assert.Equal(t, []string{d1.Session.ID}, dave.rowIDs(), "dave never saw any of it")

	// Select-all takes only the rows she may end.
	alice.click("#select-all")
	assert.Equal(t, "2 sessions selected", alice.text("#selected-count"))
}

// A blocked user's tokens stop working and its stream is closed: the page
// signs out (dropping the account's sessions) and says the user is
// blocked, and a reload stays signed out.
func TestABlockedViewersPageSignsOut(t *testing.T) {
	t.Parallel()
	s := newSite(t, siteSpec{seats: 5, users: []broker.UserSpec{{Name: "alice"}, {Name: "bob"}}})
	b1 := s.open("bob", "bob-pc", false)
	p := s.tab(browser(t), 1280, 900)
	p.signIn("/", s.acct, "alice")
	p.waitJS(fmt.Sprintf(`!!document.querySelector(%q)`, rowSel(b1.Session.ID)), 5*time.Second, "alice sees bob's session")

	_, err := s.web.BlockUser(s.ctx, s.owner, s.users["alice"].ID, true)
	require.NoError(t, err)
	// The stream closes within a second; the page reconnects after ~1 s
	// and asks /api/v1/me, which answers user_blocked.
	p.waitJS(`!document.getElementById('view-signin').hidden && document.getElementById('nav').hidden`,
		8*time.Second, "the blocked user's page signs out")
	assert.Empty(t, p.rowIDs(), "the account's sessions leave the page")
	assert.True(t, eval[bool](p, `document.getElementById('view-usage').hidden`))
	assert.Contains(t, p.text("#signin-error"), "blocked")

	p.do(chromedp.Reload())
	p.waitJS(`document.body.dataset.ready === 'true'`, 5*time.Second, "reloaded")
	assert.False(t, eval[bool](p, `document.getElementById('view-signin').hidden`), "still signed out after a reload")
	assert.Contains(t, p.text("#signin-error"), "blocked")
	assert.Empty(t, p.rowIDs())
}

// An admin demoted to member while on Users (the stream's resync) loses
// the link and the view: the page moves to License Usage and the user list
// leaves it.
func TestDemotedAdminLeavesTheUsersView(t *testing.T) {
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
	p.waitJS(`document.getElementById('view-users').hidden && !document.getElementById('view-usage').hidden`,
		time.Second, "a member is moved to License Usage")
	assert.Equal(t, "#usage", eval[string](p, `location.hash`))
	assert.Zero(t, eval[int](p, `document.querySelectorAll('#users-body tr').length`), "the user list leaves the page")
}

func TestUserSuppliedTextShowsAsText(t *testing.T) {
	t.Parallel()
	evil := `<img src=x onerror="window.__xss=1"><b>mallory</b>`
	s := newSite(t, siteSpec{seats: 5, acctName: `<i>Acme</i> & Co`, users: []broker.UserSpec{
		{Name: "admin", Role: protocol.RoleAdmin}, {Name: evil},
	}})
	g, err := s.desk.Open(s.ctx, broker.OpenRequest{Account: s.acct, UserID: s.users[evil].ID,
		DeviceID: "dev", DeviceName: `<script>window.__xss=2</script>`})
	require.NoError(t, err)

	bctx := browser(t)
	p := s.tab(bctx, 1280, 900)
	p.signIn("/", s.acct, "admin")
	p.waitJS(fmt.Sprintf(`!!document.querySelector(%q)`, rowSel(g.Session.ID)), 5*time.Second, "the row")
	assert.Equal(t, evil, p.text(rowSel(g.Session.ID)+" td.user"))
	assert.Equal(t, `<script>window.__xss=2</script>`, p.text(rowSel(g.Session.ID)+" td.device"))
	assert.Equal(t, `<i>Acme</i> & Co`, p.text("#account-name"))
	p.goTo("#users")
	p.waitJS(`document.querySelectorAll('#users-body tr').length === 3`, 5*time.Second, "the users")
	assert.Contains(t, eval[[]string](p, `[...document.querySelectorAll('#users-body td.user')].map(td => td.textContent)`), evil)
	assert.Equal(t, 0, eval[int](p, `document.querySelectorAll('main img, main b, main i, main script').length`), "no markup from data")
	assert.True(t, eval[bool](p, `window.__xss === undefined`), "no script ran")
}

func TestSecurityAndUsersTabsChangeTheAccount(t *testing.T) {
	t.Parallel()
	s := newSite(t, siteSpec{seats: 5, users: []broker.UserSpec{{Name: "alice"}}})
	alice := s.users["alice"]
	g := s.open("alice", "alice-pc", false)
	bctx := browser(t)
	p := s.tab(bctx, 1280, 900)
	p.signIn("/#settings", s.acct, "owner")
	assert.Equal(t, "#settings", eval[string](p, `location.hash`))
	boxes := `[...document.querySelectorAll('#account-perms input')].map(b => b.checked)`
	// view own, view domain, control own, control domain
	p.waitJS(`document.querySelector('#account-perms [data-perm=view-domain]').checked`, 3*time.Second, "settings loaded")
	assert.Equal(t, []bool{true, true, true, false}, eval[[]bool](p, boxes), "the default: view domain, control own")
	p.screenshot("settings-security")
	perm := func(name string) string { return `#account-perms [data-perm=` + name + `]` }
	p.click(perm("control-domain"))
	assert.Equal(t, []bool{true, true, true, true}, eval[[]bool](p, boxes), "control domain needs view domain")
	p.click(perm("view-own"))
	assert.Equal(t, []bool{false, false, false, false}, eval[[]bool](p, boxes), "no view, no control")
	p.click(perm("control-own"))
	assert.Equal(t, []bool{true, false, true, false}, eval[[]bool](p, boxes), "control own needs view own")
	p.click("#security-form button[type=submit]")
	require.Eventually(t, func() bool {
		set, err := s.web.Settings(s.ctx, s.acct)
		return err == nil && set.View == protocol.ScopeOwn && set.Control == protocol.ScopeOwn
	}, 3*time.Second, 20*time.Millisecond, "the account is now view own, control own")

	// Users: block and unblock alice.
	p.goTo("#users")
	urow := fmt.Sprintf(`#users-body tr[data-id=%q]`, alice.ID)
	p.waitJS(fmt.Sprintf(`!!document.querySelector(%q)`, urow), 3*time.Second, "alice listed")
	p.screenshot("users")
	p.click(urow + " button.danger")
	p.waitJS(`document.getElementById('confirm').open`, 2*time.Second, "blocking asks first")
	p.click("#confirm-ok")
	require.Eventually(t, func() bool {
		u, err := s.web.User(s.ctx, s.owner, alice.ID)
		return err == nil && u.Status == protocol.UserBlocked
	}, 3*time.Second, 20*time.Millisecond, "alice is blocked")
	p.waitJS(fmt.Sprintf(`document.querySelector(%q).textContent.includes('Blocked')`, urow), 3*time.Second, "the row says so")
	sess, err := s.web.Session(s.ctx, s.owner, g.Session.ID)
	require.NoError(t, err)
	assert.Equal(t, protocol.StateTerminating, sess.State, "blocking ends her sessions with the notice")
	p.click(urow + " button:nth-of-type(2)")
	require.Eventually(t, func() bool {
		u, err := s.web.User(s.ctx, s.owner, alice.ID)
		return err == nil && u.Status == protocol.UserActive
	}, 3*time.Second, 20*time.Millisecond, "alice is unblocked")

	// Her own seat limit and permissions.
	p.waitJS(fmt.Sprintf(`document.querySelector(%q).textContent.includes('Active')`, urow), 3*time.Second, "unblocked row")
	p.click(urow + " button:first-of-type")
	p.waitJS(`document.getElementById('user-dialog').open`, 2*time.Second, "the user dialog")
	p.do(chromedp.SendKeys(chromedp.ID("user-max"), "2"))
	p.click("#user-follow")
	p.click(`#user-perms [data-perm=control-own]`) // untick: view own, control none
	p.click("#user-save")
	require.Eventually(t, func() bool {
		u, err := s.web.User(s.ctx, s.owner, alice.ID)
		return err == nil && u.MaxSeats != nil && *u.MaxSeats == 2 && u.View == protocol.ScopeOwn && u.Control == protocol.ScopeNone
	}, 3*time.Second, 20*time.Millisecond, "alice: at most 2 seats, view own, control none")

	p.waitJS(`!document.getElementById('user-dialog').open`, 3*time.Second, "the dialog closes when saved")

	// Add a user.
	p.do(
		chromedp.SendKeys(chromedp.ID("add-name"), "zoe"),
		chromedp.SendKeys(chromedp.ID("add-password"), password),
	)
	p.click(`#add-user-form button[type=submit]`)
	p.waitJS(`[...document.querySelectorAll('#users-body td.user')].some(td => td.textContent === 'zoe')`, 3*time.Second, "zoe added")
}

func TestPageFitsAPhoneAndWorksByKeyboard(t *testing.T) {
	t.Parallel()
	s := newSite(t, siteSpec{seats: 2, users: []broker.UserSpec{{Name: "admin", Role: protocol.RoleAdmin}, {Name: "alice"}}})
	g := s.open("alice", "alice-phone-test", true)
	s.open("admin", "admin-pc", false)
	bctx := browser(t)
	p := s.tab(bctx, 390, 844)
	p.signIn("/", s.acct, "admin") // typed, submitted with Enter
	p.waitJS(`document.querySelectorAll('#sessions-body tr').length === 2`, 5*time.Second, "two sessions")
	assert.LessOrEqual(t, eval[int](p, `document.documentElement.scrollWidth`), eval[int](p, `window.innerWidth`),
		"nothing wider than a phone")
	p.screenshot("usage-phone")

	// Space ticks a row's box; Enter on the button asks; Escape cancels.
	p.do(chromedp.Focus(chromedp.CSS(rowSel(g.Session.ID) + " input")))
	p.do(chromedp.KeyEvent(" "))
	assert.Equal(t, "1 session selected", p.text("#selected-count"))
	p.do(chromedp.Focus(chromedp.ID("end-selected")), chromedp.KeyEvent("\r"))
	p.waitJS(`document.getElementById('confirm').open && document.activeElement.id === 'confirm-cancel'`, 2*time.Second, "the dialog has focus")
	p.do(chromedp.KeyEvent(kb.Escape))
	p.waitJS(`!document.getElementById('confirm').open`, 2*time.Second, "Escape closes it")
	sess, err := s.web.Session(s.ctx, s.owner, g.Session.ID)
	require.NoError(t, err)
	assert.Equal(t, protocol.StateStandby, sess.State, "cancelled: nothing ended")

	p.goTo("#license")
	p.waitJS(`!document.getElementById('view-license').hidden && document.getElementById('ov-in-use').textContent === '2'`, 3*time.Second, "license view")
	assert.LessOrEqual(t, eval[int](p, `document.documentElement.scrollWidth`), eval[int](p, `window.innerWidth`))
	p.screenshot("license-phone")
}

// The line under a list the page cut short ("Showing the newest 1000 of N
// sessions.") follows what happens after the page loaded: a session
// opened since shows and is counted, one that ends leaves the count, and
// so does one of those the list left out (docs/page.md).
func TestTheNewestOfLineFollowsSessionsOpenedAndEndedAfterTheLoad(t *testing.T) {
	t.Parallel()
	// a user's sessions on one device share its license, up to 100 of them
	var users []broker.UserSpec
	for i := range 11 {
		users = append(users, broker.UserSpec{Name: fmt.Sprintf("u%d", i)})
	}
	s := newSite(t, siteSpec{seats: 11, users: users})
	gs := make([]protocol.Grant, 0, 1002)
	for i := range 1002 {
		gs = append(gs, s.open(fmt.Sprintf("u%d", i/100), "pc", false))
	}
	closeSession := func(g protocol.Grant) {
		t.Helper()
		_, err := s.desk.CloseSession(s.ctx, s.acct, g.Session.UserID, "test", g.Session.ID, g.Fence)
		require.NoError(t, err)
	}
	bctx := browser(t)
	p := s.tab(bctx, 1280, 900)
	p.signIn("/#usage", s.acct, "owner")
	more := func(want, why string) {
		t.Helper()
		p.waitJS(fmt.Sprintf(`(m => !m.hidden && m.textContent === %q)(document.getElementById('sessions-more'))`, want),
			5*time.Second, why)
	}
	more("Showing the newest 1000 of 1002 sessions.", "the list is cut short")
	eval[int](p, `window.__sameDocument = 1`) // a reload would lose it
	// the two oldest are left out (sessions made in one millisecond sort
	// by id, so which two is the page's to say)
	shown := map[string]bool{}
	for _, id := range p.rowIDs() {
		shown[id] = true
	}
	var left []protocol.Grant
	for _, g := range gs {
		if !shown[g.Session.ID] {
			left = append(left, g)
		}
	}
	require.Len(t, left, 2)

	latest := s.open("u10", "pc", false)
	p.waitJS(fmt.Sprintf(`!!document.querySelector(%q)`, rowSel(latest.Session.ID)), 2*time.Second, "the new session shows")
	more("Showing the newest 1001 of 1003 sessions.", "a session opened after the load is counted")

	closeSession(latest)
	more("Showing the newest 1000 of 1002 sessions.", "a session that ended leaves the count")

	closeSession(left[0])
	more("Showing the newest 1000 of 1001 sessions.", "a session the list left out that ended leaves the count")

	closeSession(left[1]) // the last one left out: now every session shows
	p.waitJS(`document.getElementById('sessions-more').hidden`, 5*time.Second, "the line goes once every session shows")
	assert.Equal(t, 1000, eval[int](p, `document.querySelectorAll('#sessions-body tr').length`))
	assert.True(t, strings.HasPrefix(p.text("#usage-summary"), "1000 sessions"), p.text("#usage-summary"))

	// a session its user pauses is hidden from the owner, and counted out
	// until it is resumed
	last := gs[len(gs)-1]
	s.pause(fmt.Sprintf("u%d", (len(gs)-1)/100), last.Session.ID)
	p.waitJS(`document.getElementById('usage-summary').textContent.startsWith('999 sessions')`, 2*time.Second, "a hidden session is counted out")
	_, err := s.desk.Resume(s.ctx, s.acct, last.Session.UserID, last.Session.ID)
	require.NoError(t, err)
	p.waitJS(`document.getElementById('usage-summary').textContent.startsWith('1000 sessions')`, 2*time.Second, "a resumed session is counted in")
	assert.True(t, eval[bool](p, `document.getElementById('sessions-more').hidden`))
	assert.Equal(t, 1, eval[int](p, `window.__sameDocument`), "pushed, not reloaded")
}
