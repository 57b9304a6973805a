package protocol_test

import (
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seatbroker/seatbroker/broker/protocol"
)

// protocolDoc is docs/protocol.md.
func protocolDoc(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile("../../docs/protocol.md")
	require.NoError(t, err)
	return string(raw)
}

// docTable returns the rows of the first table under a "## title"
// heading, each as its cells (header and rule left out).
func docTable(t *testing.T, doc, title string) [][]string {
	t.Helper()
	_, rest, ok := strings.Cut(doc, "\n## "+title+"\n")
	require.True(t, ok, "docs/protocol.md has no section %q", title)
	rest, _, _ = strings.Cut(rest, "\n## ")
	var rows [][]string
	in := false
	for _, line := range strings.Split(rest, "\n") {
		if !strings.HasPrefix(line, "|") {
			if in {
				break
			}
			continue
		}
		if !in {
			in = true // the header
			continue
		}
		if strings.HasPrefix(line, "|---") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		rows = append(rows, cells)
	}
	require.NotEmpty(t, rows, "section %q has no table", title)
	return rows
}

var backticked = regexp.MustCompile("`([^`]*)`")

// ticks returns the backticked words of a cell.
func ticks(cell string) []string {
	var out []string
	for _, m := range backticked.FindAllStringSubmatch(cell, -1) {
		out = append(out, m[1])
	}
	return out
}

// jsonType is how encoding/json writes a Go type: string, integer,
// boolean, array or object, and "string (time)" for a time.
func jsonType(typ reflect.Type) string {
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	switch {
	case typ == reflect.TypeFor[time.Time]():
		return "string (time)"
	case typ.Kind() == reflect.Slice:
		return "array"
	case typ.Kind() == reflect.Struct:
		return "object"
	case typ.Kind() == reflect.String:
		return "string"
	case typ.Kind() == reflect.Bool:
		return "boolean"
	case typ.Kind() >= reflect.Int && typ.Kind() <= reflect.Uint64:
		return "integer"
	}
	return typ.String()
}

// wireFields adds every field of typ (a message) to out as "name" or
// "parent.name" ("sessions[].id" in arrays), with its JSON type. A
// Session is the REST API's, described by the OpenAPI document, so its
// fields are not descended into; nor are those of a notice or error in a
// session status (the table says they are as the message's own).
func wireFields(typ reflect.Type, prefix string, out map[string]string) {
	for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice {
		typ = typ.Elem()
	}
	for i := range typ.NumField() {
		f := typ.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		path := prefix + name
		typeName := jsonType(f.Type)
		if prev, ok := out[path]; ok && prev != typeName {
			out[path] = prev + " / " + typeName
		} else {
			out[path] = typeName
		}
		elem := f.Type
		for elem.Kind() == reflect.Pointer {
			elem = elem.Elem()
		}
		sub := path + "."
		if elem.Kind() == reflect.Slice {
			elem = elem.Elem()
			sub = path + "[]."
		}
		// a notice or error inside a session status is "as notice", "as error"
		if prefix == "" && elem.Kind() == reflect.Struct && elem != reflect.TypeFor[time.Time]() &&
			elem != reflect.TypeFor[protocol.Session]() {
			wireFields(elem, sub, out)
		}
	}
}

// TestProtocolDocListsEveryFieldWithItsType: the Fields table of
// docs/protocol.md names every field a client or server message carries,
// nested ones included, with the JSON type encoding/json gives it, and
// nothing else.
func TestProtocolDocListsEveryFieldWithItsType(t *testing.T) {
	want := map[string]string{}
	wireFields(reflect.TypeFor[protocol.ClientMessage](), "", want)
	wireFields(reflect.TypeFor[protocol.ServerMessage](), "", want)
	got := map[string]string{}
	for _, row := range docTable(t, protocolDoc(t), "Fields") {
		names := ticks(row[0])
		require.Len(t, names, 1, "row %v", row)
		typ := row[1]
		if strings.HasPrefix(typ, "string (time)") {
			typ = "string (time)"
		} else {
			typ, _, _ = strings.Cut(typ, " ")
		}
		got[names[0]] = typ
	}
	// the session statuses and hello's {id, fence} share "sessions"
	assert.Equal(t, want, got)
}

// TestProtocolDocMessageTablesAreTheCode: the client and server message
// tables list exactly the message types the code has, and every field
// they name is a field of the wire types.
func TestProtocolDocMessageTablesAreTheCode(t *testing.T) {
	doc := protocolDoc(t)
	fields := map[string]string{}
	wireFields(reflect.TypeFor[protocol.ClientMessage](), "", fields)
	wireFields(reflect.TypeFor[protocol.ServerMessage](), "", fields)
	leaf := map[string]bool{}
	for path := range fields {
		leaf[path[strings.LastIndexAny(path, ".")+1:]] = true
	}
	// a session's fields (the OpenAPI document's Session) may be named too
	session := reflect.TypeFor[protocol.Session]()
	for i := range session.NumField() {
		name, _, _ := strings.Cut(session.Field(i).Tag.Get("json"), ",")
		leaf[name] = true
	}
	// words in backticks that are values, not field names
	values := map[string]bool{`"seatbroker.v1"`: true, protocol.RoleDesktop: true, protocol.RoleRemote: true,
		protocol.KindPrepaid: true, protocol.KindPPU: true, "sbr_…": true, "gone": true,
		protocol.ScopeNone: true, protocol.ScopeOwn: true, protocol.ScopeDomain: true}
	for _, c := range allCodes {
		values[string(c)] = true
	}
	for _, tc := range []struct {
		title string
		types []string
		field int // the column that names fields
	}{
		{"Client messages", []string{protocol.TypeHello, protocol.TypeOpen, protocol.TypeJoin,
			protocol.TypeHeartbeat, protocol.TypePause, protocol.TypeResume, protocol.TypeClose}, 1},
		{"Server messages", []string{protocol.TypeWelcome, protocol.TypeGranted, protocol.TypeDenied,
			protocol.TypeJoined, protocol.TypePaused, protocol.TypeAck, protocol.TypeSession,
			protocol.TypeNotice, protocol.TypeEnded, protocol.TypeWarning, protocol.TypeError}, 2},
	} {
		var types []string
		for _, row := range docTable(t, doc, tc.title) {
			names := ticks(row[0])
			require.Len(t, names, 1, "row %v", row)
			types = append(types, names[0])
			for _, w := range ticks(row[tc.field]) {
				// "{id, fence: the rejoin secret}": what follows a colon says what it holds
				w = regexp.MustCompile(`:[^,}]*`).ReplaceAllString(w, "")
				for _, part := range regexp.MustCompile(`[A-Za-z_.]+`).FindAllString(w, -1) {
					part = strings.TrimPrefix(part, "hello.")
					part = strings.TrimPrefix(part, "error.")
					if values[w] || values[part] || slices.Contains(tc.types, part) {
						continue
					}
					assert.True(t, leaf[part], "%s, %s: %q is no field of the wire types", tc.title, names[0], part)
				}
			}
		}
		sort.Strings(types)
		want := slices.Clone(tc.types)
		sort.Strings(want)
		assert.Equal(t, want, types, tc.title)
	}
}

// allCodes are the codes of protocol/errors.go.
var allCodes = []protocol.Code{
	protocol.CodeAccountLimit, protocol.CodeUserLimit, protocol.CodePPUExhausted, protocol.CodeUserBlocked,
	protocol.CodeNotFound, protocol.CodeForbidden, protocol.CodeInvalidRequest, protocol.CodeRateLimited,
	protocol.CodeUnavailable, protocol.CodeUnauthorized, protocol.CodeInternal,
}

// TestProtocolDocErrorsAreTheCodes: every code the Errors table names is
// one of the code's, and every code the code has is in the table (a
// websocket error carries the same codes as the REST API).
func TestProtocolDocErrorsAreTheCodes(t *testing.T) {
	fields := map[string]string{}
	wireFields(reflect.TypeFor[protocol.ClientMessage](), "", fields)
	wireFields(reflect.TypeFor[protocol.ServerMessage](), "", fields)
	notCodes := map[string]bool{protocol.TypeError: true, protocol.TypeDenied: true, protocol.TypeAck: true}
	for path := range fields {
		notCodes[path[strings.LastIndexAny(path, ".")+1:]] = true
	}
	named := map[string]bool{}
	for _, row := range docTable(t, protocolDoc(t), "Errors") {
		for _, w := range ticks(row[1]) {
			if regexp.MustCompile(`^[a-z_]+$`).MatchString(w) && !notCodes[w] {
				named[w] = true
			}
		}
	}
	var want, got []string
	for _, c := range allCodes {
		want = append(want, string(c))
	}
	for c := range named {
		got = append(got, c)
	}
	sort.Strings(want)
	sort.Strings(got)
	assert.Equal(t, want, got)
}

// TestProtocolDocListsEveryEndedReason: the reasons an ended message may
// carry are the session's end reasons, and gone.
func TestProtocolDocListsEveryEndedReason(t *testing.T) {
	doc := protocolDoc(t)
	_, rest, ok := strings.Cut(doc, "`ended` reasons:")
	require.True(t, ok)
	rest, _, _ = strings.Cut(rest, "\n\n")
	got := ticks(rest)
	want := []string{protocol.ReasonClosed, protocol.ReasonTerminated, protocol.ReasonExpired,
		protocol.ReasonLeaseLost, protocol.ReasonPPUExhausted, protocol.ReasonUserBlocked, protocol.ReasonGone}
	sort.Strings(got)
	sort.Strings(want)
	assert.Equal(t, want, got)
}
