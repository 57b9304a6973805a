package broker_test

import (
	"crypto/tls"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/seatbroker/seatbroker/broker"
)

// A denied client shows the License Usage page's address to a person: the
// default page, a path, goes out on the address the client reached the node
// by; a configured public address goes out as it is.
func TestDeniedClientsGetThePageOnTheAddressTheyReached(t *testing.T) {
	r := httptest.NewRequest("GET", "/ws", nil)
	r.Host = "licenses.example.com:8080"
	assert.Equal(t, "http://licenses.example.com:8080/#usage", broker.PageURLFor("/#usage", r))

	r.Header.Set("X-Forwarded-Proto", "https") // a proxy that ends TLS
	assert.Equal(t, "https://licenses.example.com:8080/#usage", broker.PageURLFor("/#usage", r))

	r = httptest.NewRequest("GET", "/ws", nil)
	r.Host = "licenses.example.com"
	r.TLS = &tls.ConnectionState{}
	assert.Equal(t, "https://licenses.example.com/#usage", broker.PageURLFor("/#usage", r))

	assert.Equal(t, "https://portal.example.com/#usage", broker.PageURLFor("https://portal.example.com/#usage", r), "a configured address is kept")
	assert.Equal(t, "//evil.example/#x", broker.PageURLFor("//evil.example/#x", r), "a scheme-relative address is not a path")
}
