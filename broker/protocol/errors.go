package protocol

// Code is a stable error code. Clients match on it; the sentence beside it
// is for people and may change.
type Code string

// The codes of SPEC.md. Every refusal carries one.
const (
	CodeAccountLimit   Code = "account_limit"
	CodeUserLimit      Code = "user_limit"
	CodePPUExhausted   Code = "ppu_exhausted"
	CodeUserBlocked    Code = "user_blocked"
	CodeNotFound       Code = "not_found"
	CodeForbidden      Code = "forbidden"
	CodeInvalidRequest Code = "invalid_request"
	CodeRateLimited    Code = "rate_limited"
	CodeUnavailable    Code = "unavailable"
	// CodeUnauthorized: no valid credentials (REST 401). Not a business
	// refusal, so not in SPEC.md's list.
	CodeUnauthorized Code = "unauthorized"
	// CodeInternal: a bug on the server's side (REST 500).
	CodeInternal Code = "internal"
)

// ErrorBody is every REST error: {"error":{"code":...,"message":...}}.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail says what went wrong. A seat denial also carries the License
// Usage page's address and the user's own sessions it may end to make room.
type ErrorDetail struct {
	Code    Code      `json:"code"`
	Message string    `json:"message"`
	PageURL string    `json:"page_url,omitempty"`
	Own     []Session `json:"own_sessions,omitempty"`
	// RetryAfter is in seconds, for rate_limited.
	RetryAfter int `json:"retry_after,omitempty"`
	// Field names the offending input, for invalid_request.
	Field string `json:"field,omitempty"`
}
