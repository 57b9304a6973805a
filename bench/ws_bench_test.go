package bench

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/gorilla/websocket"
	"github.com/redis/go-redis/v9"
	"golang.org/x/crypto/bcrypt"

	"github.com/seatbroker/seatbroker/broker"
	"github.com/seatbroker/seatbroker/broker/protocol"
	"github.com/seatbroker/seatbroker/broker/ws"
	"github.com/seatbroker/seatbroker/client"
	"github.com/seatbroker/seatbroker/internal/testredis"
)

// wsClients is how many clients are connected to the node while opens
// are timed.
const wsClients = 1000

// wsNode is one broker node with its websocket server on loopback, on a
// redis-server of its own, with one account of ample seats.
type wsNode struct {
	b   *broker.Broker
	srv *ws.Server
	url string
	// tokens of the account's wsUsers users: a user holds at most
	// ws.Options.MaxUserConns desktop connections on a node, so the
	// wsClients connections are spread over them, as many people's are
	tokens []string
}

// wsUsers is how many users the wsClients connections belong to.
const wsUsers = 10

// token is the token of connection i's user.
func (n *wsNode) token(i int) string { return n.tokens[i%len(n.tokens)] }

func startWSNode(b *testing.B) *wsNode {
	b.Helper()
	broker.SetBcryptCost(bcrypt.MinCost)
	gin.SetMode(gin.ReleaseMode)
	rs, err := testredis.Start()
	if err != nil {
		b.Fatal(err)
	}
	rc := redis.NewClient(&redis.Options{Addr: rs.Addr, PoolSize: 64})
	cfg := broker.DefaultConfig() // heartbeat 10 s, lease 30 s, as deployed
	cfg.Prefix = "wsbench:v1"
	br, err := broker.New(rc, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = br.Run(ctx) }()
	r := gin.New()
	srv := ws.Register(r, br, ws.Options{})
	hs := httptest.NewServer(r)
	b.Cleanup(func() {
		hs.Close()
		srv.Close()
		cancel()
		br.Close()
		wg.Wait()
		_ = rc.Close()
		rs.Stop()
	})

	_, owner, err := br.CreateAccount(ctx, broker.AccountSpec{ID: "wsbench", Seats: 1_000_000, OwnerName: "owner"})
	if err != nil {
		b.Fatal(err)
	}
	op, err := br.PrincipalFor(ctx, "wsbench", owner.ID)
	if err != nil {
		b.Fatal(err)
	}
	n := &wsNode{b: br, srv: srv, url: strings.Replace(hs.URL, "http://", "ws://", 1) + protocol.WSPath}
	for i := range wsUsers {
		u, err := br.AddUser(ctx, op, broker.UserSpec{Name: fmt.Sprintf("user-%d", i)})
		if err != nil {
			b.Fatal(err)
		}
		p, err := br.PrincipalFor(ctx, "wsbench", u.ID)
		if err != nil {
			b.Fatal(err)
		}
		tok, err := br.IssueToken(ctx, p, time.Hour, "bench")
		if err != nil {
			b.Fatal(err)
		}
		n.tokens = append(n.tokens, tok.Token)
	}
	return n
}

// BenchmarkWSOpenToGranted times open -> granted through the client
// library, with 1,000 desktop clients connected to one node (each on its
// own device, so every open takes a new seat), 32 opening at a time.
// Reports p50/p99 in ms and opens per second.
func BenchmarkWSOpenToGranted(b *testing.B) {
	n := startWSNode(b)
	ctx := context.Background()
	clients := make([]*client.Client, wsClients)
	for i := range clients {
		c, err := client.Dial(ctx, n.url, client.Options{Token: n.token(i), DeviceID: fmt.Sprintf("dev-%d", i)})
		if err != nil {
			b.Fatal(err)
		}
		clients[i] = c
		go func() {
			for range c.Events() { // a real application reads its events
			}
		}()
	}
	b.Cleanup(func() {
		for _, c := range clients {
			_ = c.Close()
		}
	})
	const workers, perWorker = 32, 100
	b.ResetTimer()
	for range b.N {
		lat := make([]time.Duration, 0, workers*perWorker)
		var mu sync.Mutex
		var wg sync.WaitGroup
		start := time.Now()
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				mine := make([]time.Duration, 0, perWorker)
				for i := range perWorker {
					c := clients[(w*perWorker+i)%wsClients]
					t0 := time.Now()
					g, err := c.Open(ctx)
					if err != nil {
						b.Error(err)
						return
					}
					mine = append(mine, time.Since(t0))
					if _, err := c.CloseSession(ctx, g.Session.ID); err != nil {
						b.Error(err)
						return
					}
				}
				mu.Lock()
				lat = append(lat, mine...)
				mu.Unlock()
			}()
		}
		wg.Wait()
		elapsed := time.Since(start)
		slices.Sort(lat)
		b.ReportMetric(ms(wsQuantile(lat, 0.50)), "p50-ms")
		b.ReportMetric(ms(wsQuantile(lat, 0.99)), "p99-ms")
		b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "opens/s")
		b.ReportMetric(float64(n.srv.Conns()), "conns")
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func wsQuantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))]
}

// BenchmarkWSIdleConnMemory measures the memory the node holds per idle
// desktop connection (signed in, no session): heap and goroutine stacks
// with 1,000 connections, minus the same with the client ends alone
// (against a bare handshake that keeps only the socket), per connection.
func BenchmarkWSIdleConnMemory(b *testing.B) {
	n := startWSNode(b)
	for range b.N {
		full := wsMeasure(b, func() []*websocket.Conn { return wsIdle(b, n, wsClients) })
		bare := wsBareMemory(b)
		b.ReportMetric(full/wsClients, "bytes/conn-both-ends")
		b.ReportMetric(bare/wsClients, "bytes/conn-client-end")
		b.ReportMetric((full-bare)/wsClients, "bytes/conn-server")
	}
}

// wsMeasure returns how much more heap and stack is in use while the
// connections that open makes are alive.
func wsMeasure(b *testing.B, open func() []*websocket.Conn) float64 {
	before := wsInUse()
	conns := open()
	after := wsInUse()
	for _, c := range conns {
		_ = c.Close()
	}
	return float64(after) - float64(before)
}

func wsInUse() uint64 {
	var m runtime.MemStats
	for range 3 {
		runtime.GC()
		time.Sleep(50 * time.Millisecond)
	}
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse
}

// wsIdle opens k raw desktop connections that say hello and then sit.
func wsIdle(b *testing.B, n *wsNode, k int) []*websocket.Conn {
	d := &websocket.Dialer{ReadBufferSize: 256, WriteBufferSize: 256}
	hello, _ := json.Marshal(protocol.ClientMessage{Type: protocol.TypeHello, ID: "h", Version: protocol.Version,
		Role: protocol.RoleDesktop, DeviceID: "idle"})
	conns := make([]*websocket.Conn, 0, k)
	for i := range k {
		c, resp, err := d.Dial(n.url, http.Header{"Authorization": {"Bearer " + n.token(i)}})
		if err != nil {
			b.Fatal(err)
		}
		_ = resp.Body.Close()
		if err := c.WriteMessage(websocket.TextMessage, hello); err != nil {
			b.Fatal(err)
		}
		// a connection the node refused would measure nothing
		var m protocol.ServerMessage
		if err := c.ReadJSON(&m); err != nil {
			b.Fatal(err)
		}
		if m.Type != protocol.TypeWelcome {
			b.Fatalf("connection %d: hello answered %q, not welcome: %+v", i, m.Type, m.Error)
		}
		conns = append(conns, c)
	}
	return conns
}

// wsBareMemory measures k client ends against a server that completes the
// handshake and keeps only the socket (no goroutine, no buffer).
func wsBareMemory(b *testing.B) float64 {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var held []net.Conn
	var mu sync.Mutex
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			req, err := http.ReadRequest(bufio.NewReader(c))
			if err != nil {
				_ = c.Close()
				continue
			}
			sum := sha1.Sum([]byte(req.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
			_, _ = fmt.Fprintf(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
				base64.StdEncoding.EncodeToString(sum[:]))
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	d := &websocket.Dialer{ReadBufferSize: 256, WriteBufferSize: 256}
	got := wsMeasure(b, func() []*websocket.Conn {
		conns := make([]*websocket.Conn, 0, wsClients)
		for range wsClients {
			c, resp, err := d.Dial("ws://"+ln.Addr().String(), nil)
			if err != nil {
				b.Fatal(err)
			}
			_ = resp.Body.Close()
			conns = append(conns, c)
		}
		return conns
	})
	_ = ln.Close()
	<-done
	mu.Lock()
	for _, c := range held {
		_ = c.Close()
	}
	mu.Unlock()
	return got
}
