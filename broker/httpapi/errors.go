package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/seatbroker/seatbroker/broker"
	"github.com/seatbroker/seatbroker/broker/protocol"
)

// MaxBody is the largest request body the API reads (64 KiB); a larger
// one answers 413 invalid_request.
const MaxBody = 64 << 10

// errTooLarge marks a body over MaxBody.
var errTooLarge = errors.New("the request body is larger than 64 KiB")

// fail writes err as the error shape, with the status of broker.ErrorDetail,
// and stops the handler chain.
func fail(c *gin.Context, err error) {
	if errors.Is(err, errTooLarge) {
		c.AbortWithStatusJSON(http.StatusRequestEntityTooLarge, protocol.ErrorBody{Error: protocol.ErrorDetail{
			Code: protocol.CodeInvalidRequest, Message: err.Error()}})
		return
	}
	d, status := broker.ErrorDetail(err)
	if d.PageURL != "" {
		d.PageURL = broker.PageURLFor(d.PageURL, c.Request)
	}
	if d.RetryAfter > 0 {
		c.Header("Retry-After", strconv.Itoa(d.RetryAfter))
	}
	c.AbortWithStatusJSON(status, protocol.ErrorBody{Error: d})
}

// badRequest is invalid input that the domain never saw (the body, the
// query): the field and why.
func badRequest(field, reason string) error {
	return &broker.InvalidError{Field: field, Reason: reason}
}

// bind reads a JSON body into dst: at most MaxBody bytes, unknown fields
// and trailing data refused. An empty body is refused unless emptyOK (the
// routes that take no body accept none, or {}).
func bind(c *gin.Context, dst any, emptyOK bool) error {
	raw, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, MaxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errTooLarge
		}
		return badRequest("", "could not read the body")
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		if emptyOK {
			return nil
		}
		return badRequest("", "a JSON body is required")
	}
	if !utf8.Valid(raw) {
		// encoding/json would turn the bad bytes into U+FFFD and store a
		// text nobody typed
		return badRequest("", "the body is not UTF-8")
	}
	if err := checkKeys(raw, dst); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return decodeErr(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return badRequest("", "unexpected data after the JSON body")
	}
	return nil
}

// checkKeys holds a body to the documented shape where encoding/json is
// lenient: it must be a JSON object (not null, not an array), and each
// top-level name must be one of dst's JSON names exactly, once
// (encoding/json matches names whatever their case, and takes the last of
// two). What it leaves (types, nested values, trailing data) Decode checks.
func checkKeys(raw []byte, dst any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	if err != nil {
		return decodeErr(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return badRequest("", "the body must be a JSON object")
	}
	names := jsonNames(reflect.TypeOf(dst))
	seen := make(map[string]bool, len(names))
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return decodeErr(err)
		}
		name, _ := tok.(string)
		if !names[name] {
			return badRequest("", fmt.Sprintf("unknown field %q", name))
		}
		if seen[name] {
			return badRequest(name, "is given twice")
		}
		seen[name] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return decodeErr(err)
		}
	}
	return nil
}

// jsonNames is the set of JSON names encoding/json decodes into t (a
// struct or a pointer to one): each exported field's tag name, or its Go
// name when it has none, and those of embedded structs.
func jsonNames(t reflect.Type) map[string]bool {
	names := map[string]bool{}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return names
	}
	for i := range t.NumField() {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if tag == "-" {
			continue
		}
		if f.Anonymous && tag == "" {
			for n := range jsonNames(f.Type) {
				names[n] = true
			}
			continue
		}
		if !f.IsExported() {
			continue
		}
		if tag == "" {
			tag = f.Name
		}
		names[tag] = true
	}
	return names
}

// decodeErr says in a sentence what was wrong with a body, naming the
// field where encoding/json tells it.
func decodeErr(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field == "" {
			return badRequest("", "the body must be a JSON object")
		}
		return badRequest(te.Field, "has the wrong type (want "+te.Type.String()+")")
	}
	var se *json.SyntaxError
	if errors.As(err, &se) || errors.Is(err, io.ErrUnexpectedEOF) {
		return badRequest("", "malformed JSON")
	}
	// unknown fields and the rest: encoding/json's sentence names the field
	return badRequest("", err.Error())
}

// noBody checks that a route that takes no body got none (or {}).
func noBody(c *gin.Context) error {
	var empty struct{}
	return bind(c, &empty, true)
}

// notFound answers unknown routes under /api/ with the error shape.
func notFound(c *gin.Context) {
	fail(c, broker.ErrNotFound)
}

// apiNotFound is an engine-wide middleware: gin runs the engine's
// middleware for unmatched requests too, so an unknown route under /api/
// answers 404 in the error shape without taking gin's NoRoute from the
// page's handler.
func apiNotFound(c *gin.Context) {
	p := c.Request.URL.Path
	if c.FullPath() == "" && (p == "/api" || len(p) >= 5 && p[:5] == "/api/") {
		notFound(c)
		return
	}
	c.Next()
}
