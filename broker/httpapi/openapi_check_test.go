package httpapi_test

import (
	"bytes"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/seatbroker/seatbroker/broker/httpapi"
)

// answerChecker holds answers to the OpenAPI document: every request a
// test of this package sends through env.request is checked by it, so the
// document is held to every answer these tests see.
type answerChecker struct {
	doc      map[string]any
	compiler *jsonschema.Compiler
	mu       sync.Mutex
	schemas  map[string]*jsonschema.Schema // guarded by mu; by JSON pointer
}

const specURL = "seatbroker-openapi.json"

var loadChecker = sync.OnceValues(func() (*answerChecker, error) {
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(httpapi.OpenAPI))
	if err != nil {
		return nil, err
	}
	doc, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("the OpenAPI document is not an object")
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020) // OpenAPI 3.1's dialect
	c.AssertFormat()                     // date-time is checked, not just noted
	if err := c.AddResource(specURL, doc); err != nil {
		return nil, err
	}
	return &answerChecker{doc: doc, compiler: c, schemas: map[string]*jsonschema.Schema{}}, nil
})

// schema compiles the schema at a JSON pointer of the document.
func (ac *answerChecker) schema(ptr string) (*jsonschema.Schema, error) {
	ac.mu.Lock()
	defer ac.mu.Unlock()
	if s, ok := ac.schemas[ptr]; ok {
		return s, nil
	}
	s, err := ac.compiler.Compile(specURL + "#" + ptr)
	if err != nil {
		return nil, err
	}
	ac.schemas[ptr] = s
	return s, nil
}

func escapePtr(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// operation finds the document's path template and operation of a
// request path under /api/v1 (literal segments win over parameters), and
// reports whether the path is one of the document's.
func (ac *answerChecker) operation(method, path string) (tmpl string, op map[string]any, pathKnown bool) {
	paths, _ := ac.doc["paths"].(map[string]any)
	segs := strings.Split(path, "/")
	best := -1
	for p, v := range paths {
		ps := strings.Split(p, "/")
		if len(ps) != len(segs) {
			continue
		}
		literal := 0
		for i := range ps {
			if strings.HasPrefix(ps[i], "{") && segs[i] != "" {
				continue
			}
			if ps[i] != segs[i] {
				literal = -1
				break
			}
			literal++
		}
		if literal <= best {
			continue
		}
		best, tmpl = literal, p
		op, _ = v.(map[string]any)[strings.ToLower(method)].(map[string]any)
	}
	return tmpl, op, best >= 0
}

// check returns what is wrong with an answer to method path (with its
// query) by the document, or nil. key names the operation and status
// ("GET /sessions/{id} 404"), "" for paths outside the API.
func (ac *answerChecker) check(method, path string, r reply) (key string, problems []string) {
	path, _, _ = strings.Cut(path, "?")
	rel, ok := strings.CutPrefix(path, "/api/v1/")
	if !ok {
		return "", nil
	}
	tmpl, op, _ := ac.operation(method, "/"+rel)
	var responses map[string]any
	var ptr string
	if op != nil {
		key = method + " " + tmpl + " " + strconv.Itoa(r.status)
		responses, _ = op["responses"].(map[string]any)
		ptr = "/paths/" + escapePtr(tmpl) + "/" + strings.ToLower(method) + "/responses/"
	} else {
		// not an operation of the document: an API 404 (or 405) in the error shape
		key = method + " (no operation) " + strconv.Itoa(r.status)
		if r.status != http.StatusNotFound && r.status != http.StatusMethodNotAllowed {
			return key, []string{fmt.Sprintf("%s %s is no operation of the document, yet it answered %d", method, path, r.status)}
		}
		responses = map[string]any{"4XX": map[string]any{"$ref": "#/components/responses/Error"}}
		ptr = "/paths/none/"
	}
	status := strconv.Itoa(r.status)
	resp, ok := responses[status]
	if !ok {
		status = strconv.Itoa(r.status/100) + "XX"
		resp, ok = responses[status]
	}
	if !ok {
		status = "default"
		resp, ok = responses[status]
	}
	if !ok {
		return key, []string{fmt.Sprintf("%s %s answered %d, which the document does not declare", method, path, r.status)}
	}
	ptr += escapePtr(status)
	if m, _ := resp.(map[string]any); m != nil {
		if ref, ok := m["$ref"].(string); ok {
			ptr = strings.TrimPrefix(ref, "#")
			resp = ac.at(ptr)
		}
	}
	content, _ := resp.(map[string]any)["content"].(map[string]any)
	if method == http.MethodHead {
		return key, nil
	}
	if len(content) == 0 {
		if len(r.body) > 0 {
			problems = append(problems, fmt.Sprintf("%s %s answered %d with a body, where the document declares none: %.300s", method, path, r.status, r.body))
		}
		return key, problems
	}
	ct, _, err := mime.ParseMediaType(r.header.Get("Content-Type"))
	if err != nil {
		ct = r.header.Get("Content-Type")
	}
	if _, ok := content[ct]; !ok {
		return key, []string{fmt.Sprintf("%s %s answered %d as %q, which the document does not declare", method, path, r.status, ct)}
	}
	if ct != "application/json" {
		return key, nil
	}
	sch, err := ac.schema(ptr + "/content/application~1json/schema")
	if err != nil {
		return key, []string{fmt.Sprintf("%s %s: the document's schema does not compile: %v", method, path, err)}
	}
	body, err := jsonschema.UnmarshalJSON(bytes.NewReader(r.body))
	if err != nil {
		return key, []string{fmt.Sprintf("%s %s answered %d with a body that is not JSON: %.300s", method, path, r.status, r.body)}
	}
	if err := sch.Validate(body); err != nil {
		problems = append(problems, fmt.Sprintf("%s %s answered %d with a body its schema refuses: %v\nbody: %.2000s", method, path, r.status, err, r.body))
	}
	return key, problems
}

// at returns the document's value at a JSON pointer.
func (ac *answerChecker) at(ptr string) any {
	cur := any(ac.doc)
	for _, part := range strings.Split(strings.TrimPrefix(ptr, "/"), "/") {
		m, _ := cur.(map[string]any)
		cur = m[strings.ReplaceAll(strings.ReplaceAll(part, "~1", "/"), "~0", "~")]
	}
	return cur
}

// answerLog is the set of "GET /me 200" an env has seen.
type answerLog struct {
	mu   sync.Mutex
	seen map[string]bool // guarded by mu
}

// checkAnswer holds an answer to the OpenAPI document, and notes which
// operation and status it was.
func (e *env) checkAnswer(method, path string, r reply) {
	e.t.Helper()
	ac, err := loadChecker()
	if err != nil {
		e.t.Fatalf("OpenAPI document: %v", err)
	}
	key, problems := ac.check(method, path, r)
	for _, p := range problems {
		e.t.Errorf("OpenAPI: %s", p)
	}
	if key != "" {
		e.answers.mu.Lock()
		e.answers.seen[key] = true
		e.answers.mu.Unlock()
	}
}

// answered reports whether the env saw an answer with this key.
func (e *env) answered(key string) bool {
	e.answers.mu.Lock()
	defer e.answers.mu.Unlock()
	return e.answers.seen[key]
}
