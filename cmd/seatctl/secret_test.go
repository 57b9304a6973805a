package main

import (
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seatbroker/seatbroker/broker/protocol"
)

// A password piped in (`echo pw | seatctl login ...`) is read without a
// prompt: nobody is at a terminal to read one, and it would end up in the
// output a script captures.
func TestAPipedPasswordIsReadWithoutAPrompt(t *testing.T) {
	r, w, err := os.Pipe()
	require.NoError(t, err)
	_, err = w.WriteString("s3cret pass\r\n")
	require.NoError(t, err)
	require.NoError(t, w.Close())
	var got string
	_, stderr := captureOutput(t, func() { got, err = readSecret(r, "password: ") })
	require.NoError(t, err)
	assert.Equal(t, "s3cret pass", got)
	assert.Empty(t, stderr)

	// an empty pipe is an empty password (the caller refuses it), not an error
	r2, w2, err := os.Pipe()
	require.NoError(t, err)
	require.NoError(t, w2.Close())
	got, err = readSecret(r2, "password: ")
	require.NoError(t, err)
	assert.Empty(t, got)
}

// `seatctl settings` shows the three durations in one unit, as the
// server's flags take them.
func TestSettingsShowTheDurationsInOneUnit(t *testing.T) {
	stdout, _ := captureOutput(t, func() {
		require.NoError(t, printSettings(protocol.Settings{NoticeSec: 30, StandbySec: 1800, PausedSec: 8 * 3600}))
	})
	assert.Regexp(t, `(?m)^notice\s+30s$`, stdout)
	assert.Regexp(t, `(?m)^standby\s+30m0s$`, stdout)
	assert.Regexp(t, `(?m)^paused\s+8h0m0s$`, stdout)
}
