package protocol_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seatbroker/seatbroker/broker/protocol"
)

func TestDecodeClientRefusesWhatTheDocsSayItRefuses(t *testing.T) {
	cases := []struct {
		name, in, field string
	}{
		{"malformed", `{"type":"hello"`, ""},
		{"not an object", `["hello"]`, ""},
		{"null", `null`, ""},
		{"two values", `{"type":"open"}{"type":"open"}`, ""},
		{"no type", `{"id":"1"}`, "type"},
		{"unknown type", `{"type":"teleport"}`, "type"},
		{"wrong field type", `{"type":"open","with_code":"yes"}`, "with_code"},
		{"old version", `{"type":"hello","version":"seatbroker.v0","role":"desktop"}`, "version"},
		{"no version", `{"type":"hello","role":"desktop"}`, "version"},
		{"bad role", `{"type":"hello","version":"seatbroker.v1","role":"admin"}`, "role"},
		{"password without account", `{"type":"hello","version":"seatbroker.v1","role":"desktop","password":"x"}`, "account"},
		{"session without id", `{"type":"hello","version":"seatbroker.v1","role":"desktop","sessions":[{"fence":"1"}]}`, "sessions"},
		{"join without code", `{"type":"join","code":"  "}`, "code"},
		{"pause without session", `{"type":"pause"}`, "session_id"},
		{"long id", `{"type":"open","id":"` + strings.Repeat("x", 65) + `"}`, "id"},
		{"not UTF-8", "{\"type\":\"open\",\"id\":\"\xff\"}", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := protocol.DecodeClient([]byte(tc.in))
			var de *protocol.DecodeError
			require.True(t, errors.As(err, &de), "got %v", err)
			assert.Equal(t, tc.field, de.Field)
			d := de.Detail()
			assert.Equal(t, protocol.CodeInvalidRequest, d.Code)
			assert.NotEmpty(t, d.Message)
		})
	}
}

func TestDecodeClientReadsEveryRequestType(t *testing.T) {
	for _, in := range []string{
		`{"type":"hello","id":"h","version":"seatbroker.v1","role":"desktop","token":"sbt_x","device_id":"d","sessions":[{"id":"s","fence":"3"}]}`,
		`{"type":"hello","version":"seatbroker.v1","role":"remote"}`,
		`{"type":"open","id":"1","with_code":true}`,
		`{"type":"join","code":"123456789"}`,
		`{"type":"heartbeat","future_field":1}`,
		`{"type":"pause","session_id":"s"}`,
		`{"type":"resume","session_id":"s"}`,
		` {"type":"close","session_id":"s"} `,
	} {
		m, err := protocol.DecodeClient([]byte(in))
		require.NoError(t, err, in)
		assert.NotEmpty(t, m.Type)
	}
}

func TestDecodeServerRefusesUnknownTypes(t *testing.T) {
	_, err := protocol.DecodeServer([]byte(`{"type":"granted_v2"}`))
	var de *protocol.DecodeError
	require.ErrorAs(t, err, &de)
	assert.Equal(t, "type", de.Field)
	m, err := protocol.DecodeServer([]byte(`{"type":"notice","notice":{"session_id":"s","deadline":"2026-01-01T00:00:00Z","seconds_left":3,"ms_left":2500,"reason":"terminated"}}`))
	require.NoError(t, err)
	assert.Equal(t, int64(2500), m.Notice.MSLeft)
}

// FuzzDecode: the decoder never panics, refuses with a *DecodeError, and
// what it accepts survives a round trip unchanged.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"type":"hello","id":"h","version":"seatbroker.v1","role":"desktop","token":"sbt_x","device_id":"d","sessions":[{"id":"s","fence":"3"}]}`,
		`{"type":"open","with_code":true}`, `{"type":"join","code":"1"}`, `{"type":"pause","session_id":"s"}`,
		`{"type":"heartbeat"}`, `{"type":"x"}`, `[]`, `{`, `null`, `{"type":"hello","sessions":null}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := protocol.DecodeClient(data)
		if err != nil {
			var de *protocol.DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("not a DecodeError: %v", err)
			}
			return
		}
		out, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		again, err := protocol.DecodeClient(out)
		if err != nil {
			t.Fatalf("re-encoded message refused: %v (%s)", err, out)
		}
		out2, _ := json.Marshal(again)
		if string(out) != string(out2) {
			t.Fatalf("round trip changed %s into %s", out, out2)
		}
		if _, err := protocol.DecodeServer(data); err != nil {
			var de *protocol.DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("server decode: not a DecodeError: %v", err)
			}
		}
	})
}
