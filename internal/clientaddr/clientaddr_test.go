package clientaddr

import (
	"net/http"
	"net/netip"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTheClientAddressIsThePeersUnlessATrustedProxySaysOtherwise(t *testing.T) {
	r, err := Parse("10.0.0.0/8, 192.0.2.7 ,2001:db8::/32")
	require.NoError(t, err)
	for _, c := range []struct {
		name, peer string
		xff        []string
		want       string
	}{
		{"no proxy", "203.0.113.5:4000", nil, "203.0.113.5"},
		{"an untrusted peer's header is its own to forge", "203.0.113.5:4000", []string{"198.51.100.1"}, "203.0.113.5"},
		{"a trusted proxy without a header", "10.1.2.3:4000", nil, "10.1.2.3"},
		{"a trusted proxy names its client", "10.1.2.3:4000", []string{"198.51.100.1"}, "198.51.100.1"},
		{"what the client itself forged, left of it, is not read", "10.1.2.3:4000", []string{"6.6.6.6, 198.51.100.1"}, "198.51.100.1"},
		{"a chain of trusted proxies", "10.1.2.3:4000", []string{"198.51.100.1, 192.0.2.7", "10.9.9.9"}, "198.51.100.1"},
		{"all hops trusted: the leftmost", "10.1.2.3:4000", []string{"10.2.2.2, 10.3.3.3"}, "10.2.2.2"},
		{"a hop that is no address stops the walk", "10.1.2.3:4000", []string{"198.51.100.1, bogus"}, "10.1.2.3"},
		{"IPv6", "[2001:db8::1]:4000", []string{"2001:db8:ffff::9, 2a00::5"}, "2a00::5"},
		{"an IPv4 peer written as IPv6", "[::ffff:10.1.2.3]:4000", []string{"198.51.100.1"}, "198.51.100.1"},
	} {
		req := &http.Request{RemoteAddr: c.peer, Header: http.Header{}}
		for _, h := range c.xff {
			req.Header.Add("X-Forwarded-For", h)
		}
		assert.Equal(t, c.want, r.Of(req), c.name)
	}
	var none Resolver
	req := &http.Request{RemoteAddr: "10.1.2.3:4000", Header: http.Header{"X-Forwarded-For": {"198.51.100.1"}}}
	assert.Equal(t, "10.1.2.3", none.Of(req), "trusting no proxy, the peer")
}

// The limits kept per address hold a client to one address, so it is
// written one way whichever way the client came (directly, or named by a
// proxy) and however it was written; a proxy is trusted whatever zone its
// link-local address has; a hop that carries a port is still an address.
func TestAClientHasOneAddressHoweverItIsWritten(t *testing.T) {
	r, err := Parse("10.0.0.0/8, fe80::/10")
	require.NoError(t, err)
	for _, c := range []struct {
		name, peer string
		xff        []string
		want       string
	}{
		{"directly, an IPv4 peer written as IPv6", "[::ffff:203.0.113.5]:4000", nil, "203.0.113.5"},
		{"through the proxy, written as IPv6", "10.1.2.3:4000", []string{"::ffff:203.0.113.5"}, "203.0.113.5"},
		{"through the proxy, written as IPv4", "10.1.2.3:4000", []string{"203.0.113.5"}, "203.0.113.5"},
		{"directly, IPv6 as Go writes it", "[2001:db8::1]:4000", nil, "2001:db8::1"},
		{"through the proxy, IPv6 written long", "10.1.2.3:4000", []string{"2001:0DB8:0:0:0:0:0:1"}, "2001:db8::1"},
		{"a link-local proxy, with its zone", "[fe80::1%eth0]:4000", []string{"203.0.113.5"}, "203.0.113.5"},
		{"a link-local trusted hop with a zone", "10.1.2.3:4000", []string{"203.0.113.5, fe80::2%eth0"}, "203.0.113.5"},
		{"a hop with a port", "10.1.2.3:4000", []string{"203.0.113.5:4711"}, "203.0.113.5"},
		{"an IPv6 hop with a port", "10.1.2.3:4000", []string{"[2001:db8::1]:4711"}, "2001:db8::1"},
		{"spaces around hops", "10.1.2.3:4000", []string{"  203.0.113.5 ,\t10.9.9.9  "}, "203.0.113.5"},
		{"an empty hop stops the walk", "10.1.2.3:4000", []string{"203.0.113.5, ,"}, "10.1.2.3"},
		{"an empty header", "10.1.2.3:4000", []string{""}, "10.1.2.3"},
		{"a peer without a port", "203.0.113.5", nil, "203.0.113.5"},
		{"a trusted peer without a port", "10.1.2.3", []string{"203.0.113.5"}, "203.0.113.5"},
		{"a peer that is no address (a unix socket)", "@", []string{"203.0.113.5"}, "@"},
	} {
		req := &http.Request{RemoteAddr: c.peer, Header: http.Header{}}
		for _, h := range c.xff {
			req.Header.Add("X-Forwarded-For", h)
		}
		assert.Equal(t, c.want, r.Of(req), c.name)
	}
}

// A long X-Forwarded-For (up to the server's 64 KiB of headers, all from
// the client but the last hop) costs no more than the hops walked: it is
// not split into a list of every hop for each request.
func TestALongForwardedForCostsOnlyTheHopsWalked(t *testing.T) {
	r, err := Parse("10.0.0.0/8")
	require.NoError(t, err)
	req := &http.Request{RemoteAddr: "10.1.2.3:4000", Header: http.Header{}}
	req.Header.Add("X-Forwarded-For", strings.Repeat("1,", 32<<10)+"203.0.113.5")
	require.Equal(t, "203.0.113.5", r.Of(req))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 10 {
		r.Of(req)
	}
	runtime.ReadMemStats(&after)
	assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(64<<10), "bytes allocated by 10 calls")
}

// An IPv6 client holds a whole /64 and can send from any address in it,
// so the limits per address count the /64; an IPv4 client is counted by
// its address. What is no address stays its own key.
func TestLimitsCountAnIPv6ClientByItsSlash64(t *testing.T) {
	for _, c := range []struct{ name, addr, want string }{
		{"IPv4 is itself", "203.0.113.5", "203.0.113.5"},
		{"another IPv4 address of its /24 is another key", "203.0.113.6", "203.0.113.6"},
		{"IPv6: its /64", "2001:db8:1:2::1", "2001:db8:1:2::/64"},
		{"another IPv6 address of the same /64", "2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64"},
		{"IPv6 written long", "2001:0DB8:0001:0002:0000:0000:0000:0009", "2001:db8:1:2::/64"},
		{"the next /64", "2001:db8:1:3::1", "2001:db8:1:3::/64"},
		{"another /48", "2001:db8:2:2::1", "2001:db8:2:2::/64"},
		{"an IPv4 address written as IPv6 is the IPv4 one", "::ffff:203.0.113.5", "203.0.113.5"},
		{"link-local keeps its zone", "fe80::1%eth0", "fe80::%eth0/64"},
		{"another link-local address of the same link", "fe80::2:3%eth0", "fe80::%eth0/64"},
		{"the same link-local address on another link", "fe80::1%eth1", "fe80::%eth1/64"},
		{"link-local without a zone", "fe80::1", "fe80::/64"},
		{"loopback", "::1", "::/64"},
		{"empty", "", ""},
		{"no address (a unix socket)", "@", "@"},
		{"garbage", "not an address", "not an address"},
		{"an address with a port is not an address", "203.0.113.5:4711", "203.0.113.5:4711"},
	} {
		assert.Equal(t, c.want, LimitKey(c.addr), c.name)
	}
}

func TestBadTrustedProxiesAreRefused(t *testing.T) {
	for _, bad := range []string{"10.0.0.0/33", "example.com", "10.0.0", "1.2.3.4/8/8"} {
		_, err := Parse(bad)
		assert.Error(t, err, bad)
	}
	r, err := Parse(" , ")
	require.NoError(t, err)
	assert.False(t, r.Trusts(mustAddr(t, "10.0.0.1")))
}

func mustAddr(t *testing.T, s string) netip.Addr {
	t.Helper()
	a, err := netip.ParseAddr(s)
	require.NoError(t, err)
	return a
}
