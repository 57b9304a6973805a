package webui_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/seatbroker/seatbroker/broker"
	"github.com/seatbroker/seatbroker/broker/protocol"
	"github.com/seatbroker/seatbroker/broker/server"
	"github.com/seatbroker/seatbroker/internal/brokertest"
	"github.com/seatbroker/seatbroker/internal/testredis"
)

func TestMain(m *testing.M) {
	broker.SetBcryptCost(bcrypt.MinCost)
	testredis.Main(m)
}

const (
	password   = "correct-horse-battery"
	chromePath = "/usr/bin/chromium"
	// notice is the ending countdown in these tests: long enough to watch
	// it count, short enough to watch the rows leave.
	notice = 4 * time.Second
)

// startBroker runs a broker node on client until the test ends.
func startBroker(t *testing.T, client redis.UniversalClient, cfg broker.Config) *broker.Broker {
	t.Helper()
	return brokertest.Start(t, client, cfg)
}

// site is a broker node serving the whole handler (API and page) on
// loopback, plus a second node on the same Redis where the simulated
// desktop and remote clients act, and one account.
type site struct {
	t     *testing.T
	ctx   context.Context
	web   *broker.Broker // the node the page talks to
	desk  *broker.Broker // the node the simulated clients talk to
	url   string
	acct  string
	owner broker.Principal
	users map[string]protocol.User
}

type siteSpec struct {
	seats    int64
	acctName string
	users    []broker.UserSpec
}

func newSite(t *testing.T, spec siteSpec) *site {
	t.Helper()
	rc := testredis.Client(t)
	cfg := broker.DefaultConfig()
	cfg.Prefix = testredis.Prefix(t)
	cfg.Notice = notice
	cfg.ReapInterval = 50 * time.Millisecond
	web := startBroker(t, rc, cfg)
	desk := startBroker(t, rc, cfg)
	srv := httptest.NewServer(server.New(web, server.Options{}))
	t.Cleanup(srv.Close)
	ctx := context.Background()
	acct := "a" + uuid.NewString()[:8]
	owner, err := web.Bootstrap(ctx, broker.AccountSpec{ID: acct, Name: spec.acctName, Seats: spec.seats, OwnerName: "owner"}, password)
	require.NoError(t, err)
	op, err := web.PrincipalFor(ctx, acct, owner.ID)
	require.NoError(t, err)
	s := &site{t: t, ctx: ctx, web: web, desk: desk, url: srv.URL, acct: acct, owner: op,
		users: map[string]protocol.User{"owner": owner}}
	for _, us := range spec.users {
		u, err := web.AddUser(ctx, op, us)
		require.NoError(t, err)
		require.NoError(t, web.SetPassword(ctx, op, u.ID, password, ""))
		s.users[us.Name] = u
	}
	return s
}

// open is a desktop client of user opening a session on device (with a
// code: standby until a remote client joins).
func (s *site) open(user, device string, withCode bool) protocol.Grant {
	s.t.Helper()
	g, err := s.desk.Open(s.ctx, broker.OpenRequest{Account: s.acct, UserID: s.users[user].ID,
		DeviceID: device, DeviceName: device + ".example", WithCode: withCode})
	require.NoError(s.t, err)
	return g
}

func (s *site) pause(user, sid string) {
	s.t.Helper()
	_, err := s.desk.Pause(s.ctx, s.acct, s.users[user].ID, sid, "")
	require.NoError(s.t, err)
}

// shared is the one Chromium of the test binary: starting one takes
// seconds here, so the tests share it, each in its own browser context
// (its own cookies). The last test to finish stops it.
var shared struct {
	mu     sync.Mutex
	users  int // guarded by mu
	ctx    context.Context
	cancel func()
}

// browser returns the shared headless Chromium, starting it if needed.
func browser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromePath); err != nil {
		if os.Getenv("SEATBROKER_REQUIRE_BROWSER") == "1" {
			t.Fatalf("the page's browser tests need %s (apt-get install chromium): %v", chromePath, err)
		}
		t.Skipf("browser tests skipped: %s is missing (apt-get install chromium; CI sets SEATBROKER_REQUIRE_BROWSER=1 to make this a failure)", chromePath)
	}
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.users == 0 {
		dir, err := os.MkdirTemp("", "seatbroker-chromium")
		require.NoError(t, err)
		actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
			chromedp.ExecPath(chromePath),
			chromedp.Headless,
			chromedp.NoSandbox,
			chromedp.DisableGPU,
			chromedp.NoFirstRun,
			chromedp.NoDefaultBrowserCheck,
			chromedp.Flag("disable-background-networking", true),
			chromedp.Flag("disable-component-update", true),
			chromedp.Flag("disable-sync", true),
			chromedp.Flag("disable-dev-shm-usage", true),
			chromedp.Flag("disable-background-timer-throttling", true),
			chromedp.Flag("disable-renderer-backgrounding", true),
			chromedp.UserDataDir(dir),
			chromedp.WindowSize(1280, 900),
		)
		bctx, cancelBrowser := chromedp.NewContext(actx)
		if err := chromedp.Do(bctx); err != nil {
			cancelBrowser()
			cancelAlloc()
			_ = os.RemoveAll(dir)
			t.Fatalf("start chromium: %v", err)
		}
		shared.ctx = bctx
		shared.cancel = func() { cancelBrowser(); cancelAlloc(); _ = os.RemoveAll(dir) }
	}
	shared.users++
	t.Cleanup(func() {
		shared.mu.Lock()
		defer shared.mu.Unlock()
		if shared.users--; shared.users == 0 {
			shared.cancel()
		}
	})
	return shared.ctx
}

// page is one tab, in its own browser context (its own cookies).
type page struct {
	t   *testing.T
	ctx context.Context
	url string
}

func (s *site) tab(bctx context.Context, width, height int64) *page {
	s.t.Helper()
	ctx, cancel := chromedp.NewContext(bctx, chromedp.WithNewBrowserContext())
	s.t.Cleanup(cancel)
	ctx, cancelT := context.WithTimeout(ctx, 45*time.Second)
	s.t.Cleanup(cancelT)
	p := &page{t: s.t, ctx: ctx, url: s.url}
	p.do(chromedp.EmulateViewport(width, height))
	return p
}

func (p *page) do(steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	require.NoError(p.t, chromedp.Do(p.ctx, steps...))
}

// eval runs a script in the page and returns its value.
func eval[T any](p *page, expr string) T {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[T](expr))
	require.NoError(p.t, err, expr)
	return v
}

// waitJS waits until expr is true in the page.
func (p *page) waitJS(expr string, within time.Duration, why string) {
	p.t.Helper()
	_, err := chromedp.Run(p.ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(within), chromedp.WithPollingInterval(20*time.Millisecond)))
	require.NoError(p.t, err, "%s (waited %s for %s)", why, within, expr)
}

// signIn opens address (the page's own, or a denied client's page URL),
// signs in and waits for the page to settle on a view.
func (p *page) signIn(address, acct, name string) {
	p.t.Helper()
	p.do(
		chromedp.Navigate(p.url+address),
		chromedp.WaitVisible(chromedp.ID("signin-account")),
		chromedp.SendKeys(chromedp.ID("signin-account"), acct),
		chromedp.SendKeys(chromedp.ID("signin-name"), name),
		chromedp.SendKeys(chromedp.ID("signin-password"), password+"\r"),
	)
	p.waitJS(`document.getElementById('nav').hidden === false`, 10*time.Second, "signed in")
}

// goTo follows an in-page link (a hash route).
func (p *page) goTo(hash string) {
	p.t.Helper()
	eval[string](p, fmt.Sprintf(`location.hash = %q`, hash))
}

func (p *page) click(sel string) {
	p.t.Helper()
	p.do(chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible))
}

func (p *page) text(sel string) string {
	p.t.Helper()
	return eval[string](p, fmt.Sprintf(`(document.querySelector(%q) || {textContent: '<missing>'}).textContent`, sel))
}

func rowSel(sid string) string { return fmt.Sprintf(`#sessions-body tr[data-id=%q]`, sid) }

// rowIDs are the ids of the License Usage rows, top to bottom.
func (p *page) rowIDs() []string {
	p.t.Helper()
	return eval[[]string](p, `[...document.querySelectorAll('#sessions-body tr')].map(tr => tr.dataset.id)`)
}

// hasBox says whether a row has a checkbox.
func (p *page) hasBox(sid string) bool {
	p.t.Helper()
	return eval[bool](p, fmt.Sprintf(`!!document.querySelector(%q)`, rowSel(sid)+` input[type=checkbox]`))
}

// screenshot saves a PNG of the viewport into $SEATBROKER_SCREENSHOTS (or
// the test's temp folder) and returns its path.
func (p *page) screenshot(name string) string {
	p.t.Helper()
	png, err := chromedp.Run(p.ctx, chromedp.CaptureScreenshot())
	require.NoError(p.t, err)
	require.NotEmpty(p.t, png)
	dir := os.Getenv("SEATBROKER_SCREENSHOTS")
	if dir == "" {
		dir = p.t.TempDir()
	}
	require.NoError(p.t, os.MkdirAll(dir, 0o755))
	path := filepath.Join(dir, name+".png")
	require.NoError(p.t, os.WriteFile(path, png, 0o644))
	return path
}

// deniedPageURL makes a client denial happen and returns the address the
// broker sends the denied client to.
func (s *site) deniedPageURL(user, device string) string {
	s.t.Helper()
	_, err := s.desk.Open(s.ctx, broker.OpenRequest{Account: s.acct, UserID: s.users[user].ID, DeviceID: device})
	var de *broker.DeniedError
	require.True(s.t, errors.As(err, &de), "expected a denial, got %v", err)
	return de.PageURL
}
