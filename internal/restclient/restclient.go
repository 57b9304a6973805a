// Package restclient is the small client of seatbroker's REST API that the
// project's own tools share (seatctl's admin commands, the demo load).
package restclient

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/seatbroker/seatbroker/broker/protocol"
)

// maxAnswer bounds how much of an answer is read.
const maxAnswer = 32 << 20

// Client sends JSON requests with a bearer token.
type Client struct {
	// Base is prefixed to every path, e.g. "http://127.0.0.1:8080/api/v1".
	Base string
	// Token is a client token ("" sends none).
	Token string
	// HTTP is the client to use (nil: http.DefaultClient).
	HTTP *http.Client
}

// Error is an error answer of the API, in its error shape.
type Error struct {
	Status int
	Detail protocol.ErrorDetail
}

func (e *Error) Error() string { return string(e.Detail.Code) + ": " + e.Detail.Message }

// Do sends in as JSON (when not nil) and decodes the answer into out (when
// not nil). An answer in the API's error shape is an *Error.
func (c *Client) Do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		raw, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.Base+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var eb protocol.ErrorBody
		if json.Unmarshal(raw, &eb) != nil || eb.Error.Code == "" {
			return fmt.Errorf("%s %s: HTTP %d", method, path, resp.StatusCode)
		}
		return &Error{Status: resp.StatusCode, Detail: eb.Error}
	}
	if out == nil || len(raw) == 0 {
		return nil
	}
	return json.Unmarshal(raw, out)
}
