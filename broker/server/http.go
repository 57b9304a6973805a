package server

import (
	"net/http"
	"time"
)

// Timeouts bound how long one HTTP connection may hold a node's resources
// (a goroutine, a socket, buffers) without doing its part.
type Timeouts struct {
	// ReadHeader: a request's headers must arrive within this (default 10 s).
	ReadHeader time.Duration
	// Read: a whole request, headers and body, must arrive within this
	// (default 30 s; bodies are at most 64 KiB). The event stream and
	// websockets, which outlive it, lift it for themselves.
	Read time.Duration
	// Idle: a keep-alive connection waiting for its next request is closed
	// after this (default 2 min).
	Idle time.Duration
}

// DefaultTimeouts are the timeouts a node serves with.
func DefaultTimeouts() Timeouts {
	return Timeouts{ReadHeader: 10 * time.Second, Read: 30 * time.Second, Idle: 2 * time.Minute}
}

// MaxHeaderBytes bounds a request's headers (the request line included):
// a request with more (net/http allows 4 KiB of slack) gets 431.
const MaxHeaderBytes = 64 << 10

// HTTPServer returns the HTTP server of a node's handler, with t.
func HTTPServer(h http.Handler, t Timeouts) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: t.ReadHeader, ReadTimeout: t.Read, IdleTimeout: t.Idle,
		MaxHeaderBytes: MaxHeaderBytes}
}
