package httpapi_test

import (
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seatbroker/seatbroker/broker/httpapi"
	"github.com/seatbroker/seatbroker/broker/protocol"
	"github.com/seatbroker/seatbroker/broker/server"
)

// openAPIDoc is the part of the OpenAPI document the tests read.
type openAPIDoc struct {
	Paths map[string]map[string]struct {
		RequestBody *struct {
			Content map[string]struct {
				Schema struct {
					Properties map[string]struct {
						Type any `json:"type"`
					} `json:"properties"`
				} `json:"schema"`
			} `json:"content"`
		} `json:"requestBody"`
		Parameters []struct {
			Name   string `json:"name"`
			In     string `json:"in"`
			Schema struct {
				Type any `json:"type"`
			} `json:"schema"`
		} `json:"parameters"`
		Responses map[string]any `json:"responses"`
	} `json:"paths"`
}

func loadOpenAPI(t *testing.T) openAPIDoc {
	t.Helper()
	var doc openAPIDoc
	require.NoError(t, json.Unmarshal(httpapi.OpenAPI, &doc))
	var any map[string]any
	require.NoError(t, json.Unmarshal(httpapi.OpenAPI, &any))
	require.Equal(t, "3.1.0", any["openapi"])
	return doc
}

// TestOpenAPIDocumentMatchesRoutes: every route Register adds is in the
// document and every operation of the document is a route.
func TestOpenAPIDocumentMatchesRoutes(t *testing.T) {
	t.Parallel()
	r := gin.New()
	httpapi.Register(r, nil, httpapi.Options{})
	var routes []string
	for _, rt := range r.Routes() {
		p := strings.TrimPrefix(rt.Path, "/api/v1")
		parts := strings.Split(p, "/")
		for i, s := range parts {
			if strings.HasPrefix(s, ":") {
				parts[i] = "{" + s[1:] + "}"
			}
		}
		routes = append(routes, rt.Method+" "+strings.Join(parts, "/"))
	}
	var documented []string
	for p, ops := range loadOpenAPI(t).Paths {
		for m := range ops {
			documented = append(documented, strings.ToUpper(m)+" "+p)
		}
	}
	sort.Strings(routes)
	sort.Strings(documented)
	assert.Equal(t, documented, routes)

	e := newEnv(t, server.Options{})
	r2 := e.request(http.MethodGet, "/api/v1/openapi.json", "", nil)
	assert.Equal(t, http.StatusOK, r2.status)
	assert.JSONEq(t, string(httpapi.OpenAPI), string(r2.body))
}

// wrongValue is a JSON value of a type the schema type does not accept.
func wrongValue(typ any) any {
	s, _ := typ.(string)
	if l, ok := typ.([]any); ok && len(l) > 0 {
		s, _ = l[0].(string)
	}
	switch s {
	case "string":
		return 12345
	case "array":
		return map[string]int{"a": 1}
	case "object":
		return 1
	}
	return "not-a-number-or-bool"
}

// TestBadInputOnEveryRouteChangesNothing walks every operation of the
// OpenAPI document with malformed JSON, wrong top-level and field types,
// unknown fields, a huge body, bad query numbers and bad ids: each answers
// 4xx in the error shape, and Redis is byte for byte what it was.
func TestBadInputOnEveryRouteChangesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, server.Options{})
	a := e.account(5, true)
	m := a.user("m", protocol.RoleMember)
	s := a.open(m.ID, "desk")
	doc := loadOpenAPI(t)
	idFor := func(path string) string {
		if strings.HasPrefix(path, "/sessions/") {
			return s.ID
		}
		return m.ID
	}
	huge := `{"note":"` + strings.Repeat("a", httpapi.MaxBody+1) + `"}`
	before := e.snapshot()
	require.NotEmpty(t, before)
	checked := 0
	check := func(method, path string, body any, want int) {
		t.Helper()
		r := e.request(method, "/api/v1"+path, a.token, body)
		if want != 0 {
			assert.Equal(t, want, r.status, "%s %s %.80v: %s", method, path, body, r.body)
		} else {
			assert.True(t, r.status >= 400 && r.status < 500, "%s %s %.80v: %d %s", method, path, body, r.status, r.body)
		}
		r.errCode(t)
		checked++
	}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			method = strings.ToUpper(method)
			real := strings.ReplaceAll(path, "{id}", idFor(path))
			if method != http.MethodGet {
				for _, bad := range []string{`{`, `{"a":`, `[1,2]`, `"text"`, `123`, `null x`, `{}{}`, `{"zzz_unknown":1}`} {
					check(method, real, bad, 0)
				}
				check(method, real, huge, http.StatusRequestEntityTooLarge)
				if op.RequestBody != nil {
					for field, prop := range op.RequestBody.Content["application/json"].Schema.Properties {
						check(method, real, map[string]any{field: wrongValue(prop.Type)}, http.StatusBadRequest)
					}
				}
			}
			for _, p := range op.Parameters {
				if p.In == "query" && p.Schema.Type == "integer" {
					check(method, real+"?"+p.Name+"=abc", nil, http.StatusBadRequest)
					check(method, real+"?"+p.Name+"=-1", nil, http.StatusBadRequest)
				}
			}
			if strings.Contains(path, "{id}") {
				for _, bad := range []string{"nope", "123", uuid.NewString(), "..%2F..%2Fx", strings.Repeat("9", 300)} {
					check(method, strings.ReplaceAll(path, "{id}", bad), "{}", http.StatusNotFound)
				}
			}
		}
	}
	check(http.MethodGet, "/sessions?state=bogus", nil, http.StatusBadRequest)
	for _, p := range []string{"/api/v1/nope", "/api/nope", "/api/v1/sessions/x/y/z", "/api/v2/sessions"} {
		r := e.request(http.MethodGet, p, a.token, nil)
		assert.Equal(t, http.StatusNotFound, r.status, p)
		assert.Equal(t, protocol.CodeNotFound, r.errCode(t), p)
	}
	assert.Greater(t, checked, 200)
	assert.Equal(t, before, e.snapshot(), "bad input changed Redis")
}
