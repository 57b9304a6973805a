package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/seatbroker/seatbroker/broker/protocol"
)

// defaultServer is where seatctl looks without -server or
// SEATBROKER_SERVER.
const defaultServer = "http://127.0.0.1:8080"

// rest is a client of the REST API under /api/v1.
type rest struct {
	base  string
	token string
	hc    *http.Client
}

// restFlags adds -server and -token (env SEATBROKER_SERVER,
// SEATBROKER_TOKEN) to fs; call the returned function after parsing.
func restFlags(fs *flag.FlagSet) func() *rest {
	server := fs.String("server", envOr("SEATBROKER_SERVER", defaultServer), "the node's address (env SEATBROKER_SERVER)")
	token := fs.String("token", os.Getenv("SEATBROKER_TOKEN"), "a client token from `seatctl login` (env SEATBROKER_TOKEN)")
	return func() *rest {
		return &rest{base: strings.TrimSuffix(*server, "/") + "/api/v1", token: *token, hc: &http.Client{Timeout: 30 * time.Second}}
	}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// apiError is an error answer of the API.
type apiError struct {
	status int
	detail protocol.ErrorDetail
}

func (e *apiError) Error() string {
	msg := string(e.detail.Code) + ": " + e.detail.Message
	if e.detail.Code == protocol.CodeUnauthorized {
		msg += " (sign in with `seatctl login` and set SEATBROKER_TOKEN)"
	}
	return msg
}

// do sends in as JSON (when not nil) and decodes the answer into out
// (when not nil).
func (c *rest) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		raw, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var eb protocol.ErrorBody
		if json.Unmarshal(raw, &eb) != nil || eb.Error.Code == "" {
			return fmt.Errorf("%s %s: HTTP %d", method, path, resp.StatusCode)
		}
		return &apiError{status: resp.StatusCode, detail: eb.Error}
	}
	if out == nil || len(raw) == 0 {
		return nil
	}
	return json.Unmarshal(raw, out)
}

// parseAll parses flags wherever they stand among the arguments, and
// returns the arguments.
func parseAll(fs *flag.FlagSet, args []string) ([]string, error) {
	var rest []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return rest, nil
		}
		rest = append(rest, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// errUsage is a command used wrongly; the message says how.
var errUsage = errors.New("usage")

func usageErr(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errUsage}, a...)...)
}
