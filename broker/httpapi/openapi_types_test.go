package httpapi

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/seatbroker/seatbroker/broker"
	"github.com/seatbroker/seatbroker/broker/protocol"
)

// TestOpenAPIBodiesAreTheGoTypes holds every JSON answer the OpenAPI
// document declares to the Go type the handler writes: the same property
// names, each property required exactly when the Go field is always
// written (no omitempty), no other property allowed, and the JSON type
// (and date-time format) of each Go field. A client generated from the
// document then reads every answer, and may rely on what it says is
// always there.
func TestOpenAPIBodiesAreTheGoTypes(t *testing.T) {
	var doc map[string]any
	require.NoError(t, json.Unmarshal(OpenAPI, &doc))
	bodies := map[string]any{
		"POST /auth/signin 200 oneOf 0":      webSignIn{},
		"POST /auth/signin 200 oneOf 1":      clientSignIn{},
		"GET /me 200":                        meResponse{},
		"GET /overview 200":                  protocol.Overview{},
		"GET /sessions 200":                  sessionList{},
		"POST /sessions/end 200":             endResponse{},
		"GET /sessions/{id} 200":             protocol.Session{},
		"GET /sessions/{id}/ledger 200":      ledgerList{},
		"POST /sessions/{id}/pause 200":      protocol.Session{},
		"POST /sessions/{id}/resume 200":     protocol.Grant{},
		"POST /codes 200":                    protocol.Grant{},
		"GET /users 200":                     userList{},
		"POST /users 201":                    protocol.User{},
		"GET /users/{id} 200":                protocol.User{},
		"PATCH /users/{id} 200":              protocol.User{},
		"POST /users/{id}/block 200":         protocol.User{},
		"POST /users/{id}/unblock 200":       protocol.User{},
		"POST /users/{id}/revoke-tokens 200": revokeResponse{},
		"GET /settings 200":                  protocol.Settings{},
		"PATCH /settings 200":                protocol.Settings{},
		"GET /ppu 200":                       ppuStatus{},
		"GET /ppu/ledger 200":                ledgerList{},
		"GET /ppu/reconcile 200":             broker.Reconciliation{},
		"POST /ppu/topup 200":                topUpResponse{},
		"error 4XX":                          protocol.ErrorBody{},
	}
	seen := map[string]bool{}
	paths, _ := doc["paths"].(map[string]any)
	for p, ops := range paths {
		for m, op := range ops.(map[string]any) {
			resps, _ := op.(map[string]any)["responses"].(map[string]any)
			for status, r := range resps {
				content, _ := resolve(t, doc, r)["content"].(map[string]any)
				js, ok := content["application/json"].(map[string]any)
				if !ok {
					continue
				}
				schema := resolve(t, doc, js["schema"])
				name := strings.ToUpper(m) + " " + p + " " + status
				if strings.HasSuffix(status, "XX") {
					name = "error 4XX"
				}
				if p == "/openapi.json" {
					continue // the document itself
				}
				if alts, ok := schema["oneOf"].([]any); ok {
					for i, alt := range alts {
						n := name + " oneOf " + string(rune('0'+i))
						goType, ok := bodies[n]
						require.True(t, ok, "%s: no Go type listed for this answer", n)
						seen[n] = true
						compareSchema(t, doc, n, resolve(t, doc, alt), reflect.TypeOf(goType))
					}
					continue
				}
				goType, ok := bodies[name]
				require.True(t, ok, "%s: no Go type listed for this answer", name)
				seen[name] = true
				compareSchema(t, doc, name, schema, reflect.TypeOf(goType))
			}
		}
	}
	for n := range bodies {
		require.True(t, seen[n], "%s: not an answer of the document", n)
	}
}

// resolve follows a $ref within the document.
func resolve(t *testing.T, doc map[string]any, v any) map[string]any {
	t.Helper()
	m, _ := v.(map[string]any)
	for {
		ref, ok := m["$ref"].(string)
		if !ok {
			return m
		}
		cur := any(doc)
		for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
			cur = cur.(map[string]any)[strings.ReplaceAll(strings.ReplaceAll(part, "~1", "/"), "~0", "~")]
		}
		m, ok = cur.(map[string]any)
		require.True(t, ok, "%s does not resolve", ref)
	}
}

var timeType = reflect.TypeFor[time.Time]()

// compareSchema fails where the schema does not describe what
// encoding/json writes for typ.
func compareSchema(t *testing.T, doc map[string]any, where string, schema map[string]any, typ reflect.Type) {
	t.Helper()
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	want := ""
	switch {
	case typ == timeType:
		want = "string"
		if schema["format"] != "date-time" {
			t.Errorf("%s: a time, but its format is %v, not date-time", where, schema["format"])
		}
	case typ.Kind() == reflect.Struct:
		want = "object"
	case typ.Kind() == reflect.Slice:
		want = "array"
	case typ.Kind() == reflect.String:
		want = "string"
	case typ.Kind() == reflect.Bool:
		want = "boolean"
	case typ.Kind() >= reflect.Int && typ.Kind() <= reflect.Uint64:
		want = "integer"
	default:
		t.Fatalf("%s: no JSON type for Go %s", where, typ)
	}
	if got := schema["type"]; got != want {
		t.Errorf("%s: type %v, but Go %s is written as %s", where, got, typ, want)
		return
	}
	switch want {
	case "array":
		compareSchema(t, doc, where+"[]", resolve(t, doc, schema["items"]), typ.Elem())
	case "object":
		if typ == timeType {
			return
		}
		if schema["additionalProperties"] != false {
			t.Errorf("%s: additionalProperties is not false", where)
		}
		props, _ := schema["properties"].(map[string]any)
		var names, required []string
		for i := range typ.NumField() {
			f := typ.Field(i)
			tag := f.Tag.Get("json")
			if !f.IsExported() || tag == "-" {
				continue
			}
			name, opts, _ := strings.Cut(tag, ",")
			if name == "" {
				name = f.Name
			}
			names = append(names, name)
			if !strings.Contains(opts, "omitempty") {
				required = append(required, name)
			}
			ps, ok := props[name]
			if !ok {
				t.Errorf("%s: Go writes %q, the document does not declare it", where, name)
				continue
			}
			compareSchema(t, doc, where+"."+name, resolve(t, doc, ps), f.Type)
		}
		for name := range props {
			if !slices.Contains(names, name) {
				t.Errorf("%s: the document declares %q, Go never writes it", where, name)
			}
		}
		var declared []string
		if rs, ok := schema["required"].([]any); ok {
			for _, r := range rs {
				declared = append(declared, r.(string))
			}
		}
		sort.Strings(required)
		sort.Strings(declared)
		if !slices.Equal(required, declared) {
			t.Errorf("%s: required is %v; Go always writes %v", where, declared, required)
		}
	}
}

// TestOpenAPIRequestBodiesAreTheGoTypes: every request body the document
// declares has the properties the handler's Go type reads, of the JSON
// types it reads, and no others (the API refuses unknown fields, so a
// property the document lacks could not be sent, and one it has but Go
// lacks would be refused).
func TestOpenAPIRequestBodiesAreTheGoTypes(t *testing.T) {
	var doc map[string]any
	require.NoError(t, json.Unmarshal(OpenAPI, &doc))
	bodies := map[string]any{
		"POST /auth/signin":              signInRequest{},
		"POST /sessions/end":             endRequest{},
		"POST /codes":                    codeRequest{},
		"POST /users":                    addUserRequest{},
		"PATCH /users/{id}":              updateUserRequest{},
		"PUT /users/{id}/password":       passwordRequest{},
		"PATCH /settings":                broker.SettingsPatch{},
		"POST /ppu/topup":                topUpRequest{},
		"POST /auth/signout":             struct{}{},
		"POST /sessions/{id}/pause":      struct{}{},
		"POST /sessions/{id}/resume":     struct{}{},
		"POST /users/{id}/block":         struct{}{},
		"POST /users/{id}/unblock":       struct{}{},
		"POST /users/{id}/revoke-tokens": struct{}{},
	}
	seen := map[string]bool{}
	for p, ops := range doc["paths"].(map[string]any) {
		for m, op := range ops.(map[string]any) {
			rb, ok := op.(map[string]any)["requestBody"].(map[string]any)
			if !ok {
				continue
			}
			name := strings.ToUpper(m) + " " + p
			goBody, ok := bodies[name]
			require.True(t, ok, "%s: no Go type listed for this request body", name)
			seen[name] = true
			schema := resolve(t, doc, rb["content"].(map[string]any)["application/json"].(map[string]any)["schema"])
			if schema["additionalProperties"] != false {
				t.Errorf("%s: additionalProperties is not false, yet unknown fields are refused", name)
			}
			props, _ := schema["properties"].(map[string]any)
			typ := reflect.TypeOf(goBody)
			var names []string
			for i := range typ.NumField() {
				f := typ.Field(i)
				jn, _, _ := strings.Cut(f.Tag.Get("json"), ",")
				names = append(names, jn)
				ps, ok := props[jn]
				if !ok {
					t.Errorf("%s: Go reads %q, the document does not declare it", name, jn)
					continue
				}
				want := requestType(f.Type)
				got := fmt.Sprint(resolve(t, doc, ps)["type"])
				if !strings.Contains(got, want) {
					t.Errorf("%s.%s: type %s, Go reads %s", name, jn, got, want)
				}
			}
			for jn := range props {
				if !slices.Contains(names, jn) {
					t.Errorf("%s: the document declares %q, Go refuses it", name, jn)
				}
			}
		}
	}
	for n := range bodies {
		require.True(t, seen[n], "%s: no request body in the document", n)
	}
}

// requestType is the JSON type a request field of Go type typ reads.
func requestType(typ reflect.Type) string {
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	switch {
	case typ == reflect.TypeFor[nullableInt]():
		return "integer"
	case typ.Kind() == reflect.Slice:
		return "array"
	case typ.Kind() == reflect.String:
		return "string"
	case typ.Kind() == reflect.Bool:
		return "boolean"
	case typ.Kind() >= reflect.Int && typ.Kind() <= reflect.Uint64:
		return "integer"
	}
	return "object"
}
