package broker

import (
	"errors"
	"net/http"
	"strings"

	"github.com/seatbroker/seatbroker/broker/protocol"
)

// The sentinel errors of the domain, one per SPEC.md code. Match them with
// errors.Is.
var (
	ErrAccountLimit = errors.New("all licenses of the account are in use")
	ErrUserLimit    = errors.New("the user holds as many licenses as it may")
	ErrPPUExhausted = errors.New("the pay-per-use balance is used up")
	ErrUserBlocked  = errors.New("the user is blocked")
	ErrNotFound     = errors.New("not found")
	ErrForbidden    = errors.New("not allowed")
	ErrInvalid      = errors.New("invalid request")
	ErrRateLimited  = errors.New("too many requests")
	ErrUnavailable  = errors.New("the license store is unreachable")
	ErrUnauthorized = errors.New("sign in first")
	// ErrExists marks an InvalidError for something that exists already
	// (an account id, a user name): errors.Is(err, ErrExists).
	ErrExists = errors.New("exists already")
)

// DeniedError is a refused seat: the reason, the page to go to, and the
// user's own sessions it may end to make room.
type DeniedError struct {
	Err     error
	PageURL string
	Own     []protocol.Session
}

func (e *DeniedError) Error() string { return e.Err.Error() }

// Unwrap returns the sentinel.
func (e *DeniedError) Unwrap() error { return e.Err }

// InvalidError is bad input: which field, and why.
type InvalidError struct {
	Field  string
	Reason string
	exists bool // what it names exists already (ErrExists)
}

func (e *InvalidError) Error() string {
	if e.Field == "" {
		return "invalid request: " + e.Reason
	}
	return "invalid " + e.Field + ": " + e.Reason
}

// Unwrap returns ErrInvalid, and ErrExists for what exists already.
func (e *InvalidError) Unwrap() []error {
	if e.exists {
		return []error{ErrInvalid, ErrExists}
	}
	return []error{ErrInvalid}
}

func invalid(field, reason string) error { return &InvalidError{Field: field, Reason: reason} }

// taken is an InvalidError for what exists already.
func taken(field, reason string) error {
	return &InvalidError{Field: field, Reason: reason, exists: true}
}

// RateLimitedError says when to try again.
type RateLimitedError struct {
	RetryAfterSec int
}

func (e *RateLimitedError) Error() string { return ErrRateLimited.Error() }

// Unwrap returns ErrRateLimited.
func (e *RateLimitedError) Unwrap() error { return ErrRateLimited }

// errorTable maps each sentinel to its wire code and HTTP status: the one
// place that does.
var errorTable = []struct {
	err    error
	code   protocol.Code
	status int
}{
	{ErrAccountLimit, protocol.CodeAccountLimit, http.StatusConflict},
	{ErrUserLimit, protocol.CodeUserLimit, http.StatusConflict},
	{ErrPPUExhausted, protocol.CodePPUExhausted, http.StatusPaymentRequired},
	{ErrUserBlocked, protocol.CodeUserBlocked, http.StatusForbidden},
	{ErrNotFound, protocol.CodeNotFound, http.StatusNotFound},
	{ErrForbidden, protocol.CodeForbidden, http.StatusForbidden},
	{ErrInvalid, protocol.CodeInvalidRequest, http.StatusBadRequest},
	{ErrRateLimited, protocol.CodeRateLimited, http.StatusTooManyRequests},
	{ErrUnavailable, protocol.CodeUnavailable, http.StatusServiceUnavailable},
	{ErrUnauthorized, protocol.CodeUnauthorized, http.StatusUnauthorized},
}

// ErrorDetail turns any error into its wire form and HTTP status. Errors
// outside the table are bugs: "internal", with no detail leaked.
func ErrorDetail(err error) (protocol.ErrorDetail, int) {
	for _, row := range errorTable {
		if errors.Is(err, row.err) {
			d := protocol.ErrorDetail{Code: row.code, Message: err.Error()}
			if row.err == ErrUnavailable {
				// the cause (an address, a driver error) is for the log, not for clients
				d.Message = ErrUnavailable.Error() + "; nothing new is granted until it is back"
			}
			var de *DeniedError
			if errors.As(err, &de) {
				d.PageURL = de.PageURL
				d.Own = de.Own
			}
			var ie *InvalidError
			if errors.As(err, &ie) {
				d.Field = ie.Field
			}
			var re *RateLimitedError
			if errors.As(err, &re) {
				d.RetryAfter = re.RetryAfterSec
			}
			return d, row.status
		}
	}
	return protocol.ErrorDetail{Code: protocol.CodeInternal, Message: "internal error"}, http.StatusInternalServerError
}

// PageURLFor makes a page address that is a path (the default, /#usage)
// absolute on the address r reached the node by: its Host, https when the
// connection is TLS or X-Forwarded-Proto says so (a proxy that ends TLS).
// A denied client shows the address to a person, who can open a path on
// nothing. A configured absolute address (-page-url) is left as it is.
func PageURLFor(page string, r *http.Request) string {
	if !strings.HasPrefix(page, "/") || strings.HasPrefix(page, "//") || r == nil || r.Host == "" {
		return page
	}
	scheme := "http"
	if r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
		scheme = "https"
	}
	return scheme + "://" + r.Host + page
}
