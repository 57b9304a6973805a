package client_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"
	"golang.org/x/crypto/bcrypt"

	"github.com/seatbroker/seatbroker/broker"
	"github.com/seatbroker/seatbroker/broker/ws"
	"github.com/seatbroker/seatbroker/internal/testredis"
)

// The examples run against one broker node on a throwaway redis-server,
// with an account "demo-<random>" whose user ann has the token annToken.
var (
	nodeURL  string
	annToken string
	demo     *broker.Broker
	owner    broker.Principal
)

func TestMain(m *testing.M) {
	broker.SetBcryptCost(bcrypt.MinCost)
	gin.SetMode(gin.ReleaseMode)
	srv, err := testredis.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	stop, err := startNode(srv.Addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		srv.Stop()
		os.Exit(2)
	}
	code := m.Run()
	stop()
	srv.Stop()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

func startNode(addr string) (func(), error) {
	rc := redis.NewClient(&redis.Options{Addr: addr})
	cfg := broker.DefaultConfig()
	cfg.Prefix = "client-test:v1"
	cfg.Heartbeat, cfg.Lease, cfg.Notice = 100*time.Millisecond, 600*time.Millisecond, 300*time.Millisecond
	cfg.ReapInterval = 50 * time.Millisecond
	b, err := broker.New(rc, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = b.Run(ctx) }()
	r := gin.New()
	wsrv := ws.Register(r, b, ws.Options{})
	hs := httptest.NewServer(r)
	stop := func() {
		hs.Close()
		wsrv.Close()
		cancel()
		b.Close()
		wg.Wait()
		_ = rc.Close()
	}

	acct := "demo-" + uuid.NewString()[:8]
	_, o, err := b.CreateAccount(ctx, broker.AccountSpec{ID: acct, Seats: 5, OwnerName: "owner"})
	if err != nil {
		stop()
		return nil, err
	}
	owner, err = b.PrincipalFor(ctx, acct, o.ID)
	if err != nil {
		stop()
		return nil, err
	}
	u, err := b.AddUser(ctx, owner, broker.UserSpec{Name: "ann"})
	if err != nil {
		stop()
		return nil, err
	}
	ann, err := b.PrincipalFor(ctx, acct, u.ID)
	if err != nil {
		stop()
		return nil, err
	}
	tok, err := b.IssueToken(ctx, ann, time.Hour, "examples")
	if err != nil {
		stop()
		return nil, err
	}
	nodeURL, annToken, demo = hs.URL, tok.Token, b
	return stop, nil
}
