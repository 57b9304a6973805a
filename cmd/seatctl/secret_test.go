package main

import (
	"io"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seatbroker/seatbroker/broker/protocol"
)

// capture runs fn with os.Stdout and os.Stderr sent to pipes and returns
// what each got. Not parallel: it swaps the process's own files.
func capture(t *testing.T, fn func()) (stdout, stderr string) {
	t.Helper()
	read := func(p **os.File) func() string {
		r, w, err := os.Pipe()
		require.NoError(t, err)
		old := *p
		*p = w
		done := make(chan string)
		go func() { b, _ := io.ReadAll(r); done <- string(b) }()
		return func() string { *p = old; w.Close(); return <-done }
	}
	out, errs := read(&os.Stdout), read(&os.Stderr)
	fn()
	return out(), errs()
}

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
	_, stderr := capture(t, func() { got, err = readSecret(r, "password: ") })
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
	stdout, _ := capture(t, func() {
		require.NoError(t, printSettings(protocol.Settings{NoticeSec: 30, StandbySec: 1800, PausedSec: 8 * 3600}))
	})
	assert.Regexp(t, `(?m)^notice\s+30s$`, stdout)
	assert.Regexp(t, `(?m)^standby\s+30m0s$`, stdout)
	assert.Regexp(t, `(?m)^paused\s+8h0m0s$`, stdout)
}
