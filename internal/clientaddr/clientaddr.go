// Package clientaddr finds the address of the client behind an HTTP
// request, for the limits the broker keeps per address (wrong session
// codes, sign-ins, websocket connections of no account): the TCP peer's,
// or, when the peer is a proxy the operator trusts, the address that
// proxy says it served (X-Forwarded-For).
//
// Behind a load balancer every peer is the balancer, and limits kept per
// address would bind all its clients together: one client's wrong codes
// would lock every remote side out. Forwarding headers are trusted only
// from the proxies named, since anyone can send one: X-Forwarded-For is
// read from its right end, each hop a trusted proxy added, up to the first
// address that is not a trusted proxy, which is the client's.
//
// The limits are keyed by LimitKey, not by the address itself: an IPv6
// client holds a whole /64 and could otherwise step past any limit by
// changing its address.
package clientaddr

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Resolver finds a request's client address. The zero Resolver trusts no
// proxy: the address is always the TCP peer's.
type Resolver struct {
	trusted []netip.Prefix
}

// Parse makes a Resolver that trusts the proxies in list: addresses or
// CIDR ranges, comma-separated (IPv4 or IPv6; "" trusts none).
func Parse(list string) (Resolver, error) {
	var r Resolver
	for _, f := range strings.Split(list, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if p, err := netip.ParsePrefix(f); err == nil {
			r.trusted = append(r.trusted, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return Resolver{}, fmt.Errorf("%q is not an address or a CIDR range", f)
		}
		a = a.Unmap()
		r.trusted = append(r.trusted, netip.PrefixFrom(a, a.BitLen()))
	}
	return r, nil
}

// Trusts says whether a is one of the trusted proxies. An IPv6 zone
// (fe80::1%eth0) does not matter: a prefix never contains an address
// with one.
func (r Resolver) Trusts(a netip.Addr) bool {
	a = a.Unmap().WithZone("")
	for _, p := range r.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Of returns the client address of req: the TCP peer's, unless the peer
// is a trusted proxy and X-Forwarded-For names an address it served. An
// address is written one way whichever way it came (an IPv4 address
// written as IPv6 is the IPv4 one), so that a client has one address
// for the limits kept per address.
func (r Resolver) Of(req *http.Request) string {
	host, _, err := net.SplitHostPort(req.RemoteAddr)
	if err != nil {
		host = req.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	client := peer.Unmap()
	if !r.Trusts(client) {
		return client.String()
	}
	// every X-Forwarded-For header, in order, as one list: the last hop
	// is the one the peer added. It is walked from its right end one hop
	// at a time, so a long header costs no more than the hops read.
	hs := req.Header.Values("X-Forwarded-For")
	for i := len(hs) - 1; i >= 0; i-- {
		rest := hs[i]
		for {
			j := strings.LastIndexByte(rest, ',')
			a, ok := parseHop(rest[j+1:])
			if !ok {
				// not an address: what lies left of it cannot be trusted
				return client.String()
			}
			client = a
			if !r.Trusts(client) {
				return client.String()
			}
			if j < 0 {
				break
			}
			rest = rest[:j]
		}
	}
	return client.String()
}

// parseHop reads one hop of X-Forwarded-For: an address, with or without
// a port (some balancers add the client's port: 198.51.100.1:4711,
// [2001:db8::1]:4711).
func parseHop(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	return netip.Addr{}, false
}

// LimitKey is the key under which a limit kept per address counts addr:
// an IPv4 address itself, an IPv6 address its /64 ("2001:db8:1:2::/64").
// An IPv6 client is usually given a /64 or more, and can send from any of
// its 2^64 addresses, so a limit per IPv6 address would not hold it back;
// keying on the /64 is the common rule (nginx, Cloudflare, fail2ban). An
// IPv4 address written as IPv6 (::ffff:192.0.2.1) is the IPv4 one. A
// link-local address keeps its zone (fe80::%eth0/64, as RFC 4007 writes
// it): fe80::/64 on another interface is another link's clients. What is
// not an address (a ClientAddr that found none, "") is its own key,
// unchanged.
func LimitKey(addr string) string {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return addr
	}
	a = a.Unmap()
	if a.Is4() {
		return a.String()
	}
	zone := a.Zone()
	p, err := a.WithZone("").Prefix(64)
	if err != nil {
		return addr // cannot happen: an IPv6 address has 128 bits
	}
	if zone == "" {
		return p.String()
	}
	return p.Addr().WithZone(zone).String() + "/64"
}
