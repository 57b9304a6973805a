package ws_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seatbroker/seatbroker/broker/server"
	"github.com/seatbroker/seatbroker/broker/ws"
	"github.com/seatbroker/seatbroker/client"
	"github.com/seatbroker/seatbroker/internal/testredis"
)

func TestNodeHandlerServesTheWebsocket(t *testing.T) {
	t.Parallel()
	n := startNode(t, redisClient(t), fastConfig(testredis.Prefix(t)), ws.Options{})
	acct := newAccount(t, n.b, 2)
	hs := httptest.NewServer(server.New(n.b, server.Options{}))
	defer hs.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, hs.URL, client.Options{Token: acct.annTok, DeviceID: "dev1"})
	require.NoError(t, err)
	defer c.Close()
	assert.Equal(t, "ann", c.User().Name)
	assert.True(t, strings.HasPrefix(c.Token(), "sbt_"))
}
