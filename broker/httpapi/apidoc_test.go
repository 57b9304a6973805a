package httpapi_test

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seatbroker/seatbroker/broker"
)

// TestAPIDocErrorTableIsTheCode: the table of codes and HTTP statuses in
// docs/api.md is broker.ErrorDetail's, row for row (413 is the API's own
// answer to a body over MaxBody, with code invalid_request).
func TestAPIDocErrorTableIsTheCode(t *testing.T) {
	raw, err := os.ReadFile("../../docs/api.md")
	require.NoError(t, err)
	_, sec, ok := strings.Cut(string(raw), "\n## Errors\n")
	require.True(t, ok, "docs/api.md has no Errors section")
	sec, _, _ = strings.Cut(sec, "\n## ")
	documented := map[string]string{}
	for _, line := range strings.Split(sec, "\n") {
		cells := strings.Split(strings.Trim(line, "|"), "|")
		if !strings.HasPrefix(line, "| `") || len(cells) < 2 {
			continue
		}
		code := strings.Trim(strings.TrimSpace(cells[0]), "`")
		status, _, _ := strings.Cut(strings.TrimSpace(cells[1]), " ")
		documented[code] = status
	}
	actual := map[string]string{}
	for _, err := range []error{broker.ErrAccountLimit, broker.ErrUserLimit, broker.ErrPPUExhausted,
		broker.ErrUserBlocked, broker.ErrNotFound, broker.ErrForbidden, broker.ErrInvalid,
		broker.ErrRateLimited, broker.ErrUnavailable, broker.ErrUnauthorized, errors.New("a bug")} {
		d, status := broker.ErrorDetail(err)
		actual[string(d.Code)] = fmt.Sprint(status)
	}
	assert.Equal(t, actual, documented)
	assert.Contains(t, sec, fmt.Sprint(http.StatusRequestEntityTooLarge), "the 413 of a large body")
}
