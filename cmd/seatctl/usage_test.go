package main

// Tests of seatctl as a user meets it: help, flags and arguments, error
// messages and where they go. Each states what a user ran, what went wrong
// before, and what should happen.

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seatbroker/seatbroker/broker"
	"github.com/seatbroker/seatbroker/broker/protocol"
	"github.com/seatbroker/seatbroker/broker/server"
	"github.com/seatbroker/seatbroker/internal/brokertest"
	"github.com/seatbroker/seatbroker/internal/restclient"
	"github.com/seatbroker/seatbroker/internal/testredis"
)

// cliNode is a broker node with an account "acme" (owner boss).
type cliNode struct {
	b     *broker.Broker
	url   string
	owner broker.Principal
	token string // boss's client token
}

func startCLINode(t *testing.T) *cliNode {
	t.Helper()
	// the tests' own flags must win over a developer's environment
	for _, k := range []string{"SEATBROKER_TOKEN", "SEATBROKER_PASSWORD", "SEATBROKER_ACCOUNT", "SEATBROKER_USER", "SEATBROKER_SERVER"} {
		t.Setenv(k, "")
	}
	cfg := broker.DefaultConfig()
	cfg.Prefix = testredis.Prefix(t)
	b := brokertest.Start(t, testredis.Client(t), cfg)
	node := server.New(b, server.Options{})
	srv := httptest.NewServer(node)
	t.Cleanup(func() { srv.Close(); node.Close() })
	ctx := context.Background()
	owner, err := b.Bootstrap(ctx, broker.AccountSpec{ID: "acme", Seats: 3, PPUEnabled: true, OwnerName: "boss"}, "boss-password")
	require.NoError(t, err)
	op, err := b.PrincipalFor(ctx, "acme", owner.ID)
	require.NoError(t, err)
	n := &cliNode{b: b, url: srv.URL, owner: op}
	n.token = n.signIn(t, "boss", "boss-password")
	return n
}

func (n *cliNode) signIn(t *testing.T, name, password string) string {
	t.Helper()
	c := &rest{restclient.Client{Base: n.url + "/api/v1"}}
	var out struct{ Token string }
	require.NoError(t, c.do(context.Background(), "POST", "/auth/signin",
		map[string]any{"account": "acme", "name": name, "password": password, "kind": "client"}, &out))
	return out.Token
}

// as runs an admin command with the node's address and a token.
func (n *cliNode) as(token string, fn func(context.Context, []string) error, args ...string) error {
	return fn(context.Background(), append([]string{"-server", n.url, "-token", token}, args...))
}

func (n *cliNode) userID(t *testing.T, name string) string {
	t.Helper()
	us, err := n.b.Users(context.Background(), n.owner)
	require.NoError(t, err)
	for _, u := range us {
		if u.Name == name {
			return u.ID
		}
	}
	t.Fatalf("no user %q", name)
	return ""
}

// captureOutput runs fn with os.Stdout and os.Stderr sent to buffers. Tests
// that use it must not be parallel.
func captureOutput(t *testing.T, fn func()) (stdout, stderr string) {
	t.Helper()
	oldOut, oldErr := os.Stdout, os.Stderr
	ro, wo, err := os.Pipe()
	require.NoError(t, err)
	re, we, err := os.Pipe()
	require.NoError(t, err)
	var bo, be bytes.Buffer
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _, _ = io.Copy(&bo, ro) }()
	go func() { defer wg.Done(); _, _ = io.Copy(&be, re) }()
	os.Stdout, os.Stderr = wo, we
	func() {
		defer func() { os.Stdout, os.Stderr = oldOut, oldErr }()
		fn()
	}()
	_ = wo.Close()
	_ = we.Close()
	wg.Wait()
	return bo.String(), be.String()
}

// `SEATBROKER_TOKEN=... seatctl overview -h` (or any flag typo, which
// prints the same usage) printed the token, and `seatctl open -h` /
// `seatctl login -h` the password from SEATBROKER_PASSWORD, as the flags'
// defaults: a credential on the terminal, in scrollback and CI logs.
func TestHelpDoesNotPrintTheTokenOrPassword(t *testing.T) {
	const token, password = "sbt_acme_SECRETtoken", "SECRET-password"
	t.Setenv("SEATBROKER_TOKEN", token)
	t.Setenv("SEATBROKER_PASSWORD", password)
	var leaks []string
	for name, c := range commands {
		if name == "version" {
			continue
		}
		_, stderr := captureOutput(t, func() { _ = c.run(context.Background(), []string{"-h"}) })
		if strings.Contains(stderr, token) {
			leaks = append(leaks, name+" -h prints SEATBROKER_TOKEN")
		}
		if strings.Contains(stderr, password) {
			leaks = append(leaks, name+" -h prints SEATBROKER_PASSWORD")
		}
	}
	sort.Strings(leaks)
	assert.Empty(t, leaks)
}

// `seatctl overview -h` showed "-token seatctl login" and "a client token
// from seatctl login": the back-quotes in the flag's usage are taken by
// package flag as the name of the flag's value.
func TestTokenFlagUsageIsNotMangled(t *testing.T) {
	t.Setenv("SEATBROKER_TOKEN", "")
	_, stderr := captureOutput(t, func() { _ = cmdOverview(context.Background(), []string{"-h"}) })
	assert.Contains(t, stderr, "-token string")
	assert.NotContains(t, stderr, "-token seatctl login")
}

// buildSeatctl builds seatctl into a temporary folder.
func buildSeatctl(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "seatctl")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Skipf("cannot build seatctl: %v\n%s", err, out)
	}
	return bin
}

// runSeatctl runs the binary bin with args.
func runSeatctl(t *testing.T, bin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return o.String(), e.String(), ee.ExitCode()
	}
	require.NoError(t, err)
	return o.String(), e.String(), 0
}

// `seatctl login -h` (and every other command's -h) exited 1 and ended
// with the error line "seatctl login: flag: help requested": asking for
// help is not a failure (`seatctl help` exits 0).
func TestDashHExitsZeroWithoutAnError(t *testing.T) {
	bin := buildSeatctl(t)
	for _, name := range []string{"login", "sessions", "open", "join"} {
		_, stderr, code := runSeatctl(t, bin, name, "-h")
		assert.Equal(t, 0, code, "seatctl %s -h exit code", name)
		assert.NotContains(t, stderr, "help requested", "seatctl %s -h", name)
	}
}

// `echo wrong | seatctl login -account demo -name admin` said
// "unauthorized: sign in first (sign in with `seatctl login` and set
// SEATBROKER_TOKEN)": the user is running seatctl login; the problem is
// the account, name or password.
func TestLoginWithAWrongPasswordSaysSo(t *testing.T) {
	n := startCLINode(t)
	var err error
	captureOutput(t, func() {
		err = cmdLogin(context.Background(), []string{"-server", n.url, "-account", "acme", "-name", "boss", "-password", "wrong-password"})
	})
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "sign in with `seatctl login`", "login's own failure tells the user to run login")
	assert.Contains(t, err.Error(), "wrong account, name or password")
}

// `seatctl login ... -ttl 500ms` (or -ttl 0) printed a token that lives a
// day: ttl is truncated to whole seconds and 0 is the API's default, while
// -ttl 30s is refused ("a minute to a year", as the help says).
func TestLoginRefusesATTLBelowAMinute(t *testing.T) {
	n := startCLINode(t)
	for _, ttl := range []string{"500ms", "0s"} {
		var err error
		stdout, _ := captureOutput(t, func() {
			err = cmdLogin(context.Background(), []string{"-server", n.url, "-account", "acme", "-name", "boss", "-password", "boss-password", "-ttl", ttl})
		})
		assert.Error(t, err, "-ttl %s gave a token: %s", ttl, strings.TrimSpace(stdout))
	}
}

// `seatctl open -account A -user U -password P now -code` opened an active
// session without a code: open stops parsing flags at the first argument
// and ignores the arguments, so -code was silently dropped. It should
// either take the flag (as the admin commands do) or refuse the stray
// argument.
func TestOpenDoesNotDropFlagsAfterAnArgument(t *testing.T) {
	n := startCLINode(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- runOpen(ctx, []string{"-server", n.url, "-account", "acme", "-user", "boss", "-password", "boss-password",
			"-device", "cli-dev", "now", "-code"})
	}()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			require.Error(t, err, "open returned without opening a session")
			return // the stray argument was refused: fine
		default:
		}
		ss, _, err := n.b.Sessions(context.Background(), n.owner, broker.SessionFilter{})
		require.NoError(t, err)
		if len(ss) > 0 {
			assert.Equal(t, protocol.StateStandby, ss[0].State, "-code after an argument was ignored: no session code")
			cancel()
			<-done
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("open neither opened a session nor returned")
}

// `seatctl join 123456789 -name rita` failed with the usage line, while
// every admin command takes its flags after its arguments too
// (`seatctl topup 5 -key k`).
func TestJoinTakesFlagsAfterTheCode(t *testing.T) {
	n := startCLINode(t)
	var err error
	captureOutput(t, func() {
		err = runJoin(context.Background(), []string{"123456789", "-name", "rita", "-server", n.url})
	})
	require.Error(t, err, "no such code")
	assert.NotContains(t, err.Error(), "usage", "flags after the code are refused")
}

// `seatctl join 000000000` printed "refused (not_found): not found" on
// stdout and only "seatctl join: could not join" on stderr: the reason of
// a failed command belongs on stderr with the error (the same holds for
// open's "no seat" refusal).
func TestJoinRefusalGoesToStderr(t *testing.T) {
	n := startCLINode(t)
	var err error
	stdout, stderr := captureOutput(t, func() {
		err = runJoin(context.Background(), []string{"-server", n.url, "000000000"})
	})
	require.Error(t, err)
	assert.NotContains(t, stdout, "not_found", "the refusal is on stdout")
	assert.Contains(t, stderr, "not_found", "stderr lacks the API's code")
}

// A member with view domain: `seatctl sessions -user carol` failed with
// "forbidden: not allowed" (the name is looked up in GET /users, which is
// for admins), although `-user <carol's id>` works and the help says
// "name or id".
func TestMemberFiltersSessionsByName(t *testing.T) {
	n := startCLINode(t)
	captureOutput(t, func() {
		require.NoError(t, n.as(n.token, cmdUserAdd, "carol", "-password", "carol-password"))
	})
	carol := n.signIn(t, "carol", "carol-password")
	var err error
	captureOutput(t, func() { err = n.as(carol, cmdSessions, "-user", "carol") })
	assert.NoError(t, err)
}

// `seatctl sessions -user NAME` for a user whose name is 36 characters
// long (an e-mail address, say) listed nothing: any 36-character value is
// taken for a user id.
func TestSessionsUserByA36CharacterName(t *testing.T) {
	n := startCLINode(t)
	name := "maria.fernandez-garcia@example.co.uk"
	require.Len(t, name, 36)
	captureOutput(t, func() {
		require.NoError(t, n.as(n.token, cmdUserAdd, name, "-password", "maria-password"))
	})
	g, err := n.b.Open(context.Background(), broker.OpenRequest{Account: "acme", UserID: n.userID(t, name), DeviceID: "d"})
	require.NoError(t, err)
	stdout, _ := captureOutput(t, func() { err = n.as(n.token, cmdSessions, "-json", "-user", name) })
	require.NoError(t, err)
	assert.Contains(t, stdout, g.Session.ID, "the user's session is not listed")
}

// `seatctl user-add dora -max-seats -5` added dora with no limit: a
// negative value is silently "no limit" (user-set refuses it: "must be 0
// to 1000000").
func TestUserAddRefusesNegativeMaxSeats(t *testing.T) {
	n := startCLINode(t)
	var err error
	captureOutput(t, func() { err = n.as(n.token, cmdUserAdd, "dora", "-password", "dora-password", "-max-seats", "-5") })
	assert.Error(t, err, "-max-seats -5 was taken as no limit")
}

// `seatctl logout sbt_other` revoked the token in SEATBROKER_TOKEN, not
// the one named, and said nothing: the commands that take no arguments
// (logout, overview, settings, users, ledger, sessions, permissions,
// login) ignore any they are given.
func TestCommandsThatTakeNoArgumentsRefuseThem(t *testing.T) {
	n := startCLINode(t)
	var err error
	captureOutput(t, func() { err = n.as(n.token, cmdLogout, "sbt_acme_some_other_token") })
	assert.Error(t, err, "logout took an argument it does not use")
	captureOutput(t, func() { err = n.as(n.token, cmdOverview) })
	assert.NoError(t, err, "the token in use was revoked instead")

	captureOutput(t, func() { err = n.as(n.token, cmdSessions, "carol") })
	assert.Error(t, err, "sessions ignores its argument and lists every session")
}

// README: an admin exports SEATBROKER_TOKEN in the terminal; running the
// desktop line there again,
// `SEATBROKER_ACCOUNT=acme SEATBROKER_USER=ann SEATBROKER_PASSWORD=... seatctl open`,
// signed in with the admin's token and opened a session, holding a
// license, for the admin rather than ann. A sign-in that is not the user
// named is refused before anything is opened.
func TestOpenRefusesATokenOfAnotherUserThanTheOneNamed(t *testing.T) {
	n := startCLINode(t)
	captureOutput(t, func() {
		require.NoError(t, n.as(n.token, cmdUserAdd, "ann", "-password", "ann-password"))
	})
	t.Setenv("SEATBROKER_TOKEN", n.token) // boss's
	t.Setenv("SEATBROKER_PASSWORD", "ann-password")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		var err error
		captureOutput(t, func() {
			err = runOpen(ctx, []string{"-server", n.url, "-account", "acme", "-user", "ann", "-device", "cli-dev"})
		})
		done <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			require.Error(t, err, "open returned without an error")
			assert.Contains(t, err.Error(), "boss", "the error says whose the token is")
			assert.Contains(t, err.Error(), "ann")
			ss, _, lerr := n.b.Sessions(context.Background(), n.owner, broker.SessionFilter{})
			require.NoError(t, lerr)
			assert.Empty(t, ss, "a session was opened")
			return
		default:
		}
		ss, _, err := n.b.Sessions(context.Background(), n.owner, broker.SessionFilter{})
		require.NoError(t, err)
		if len(ss) > 0 {
			cancel()
			<-done
			t.Fatalf("open signed in as %s, not ann, and opened a session", ss[0].UserName)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("open neither opened a session nor returned")
}

// `seatctl open -server A,B`: with its first node down the desktop opens
// its session through the next one (the client's fallback addresses), as
// it would keep it there when its node died.
func TestOpenFallsBackOnTheNextServerGiven(t *testing.T) {
	n := startCLINode(t)
	down := httptest.NewServer(nil)
	downURL := down.URL
	down.Close() // a node that is down: its port refuses connections
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- runOpen(ctx, []string{"-server", downURL + "," + n.url, "-account", "acme", "-user", "boss", "-password", "boss-password", "-device", "cli-fallback"})
	}()
	require.Eventually(t, func() bool {
		select {
		case err := <-done:
			t.Fatalf("open returned: %v", err)
		default:
		}
		ss, _, err := n.b.Sessions(context.Background(), n.owner, broker.SessionFilter{})
		return err == nil && len(ss) == 1 && ss[0].DeviceID == "cli-fallback"
	}, 10*time.Second, 50*time.Millisecond, "no session opened through the second server")
	cancel()
	<-done
}
