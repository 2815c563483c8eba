package testkit

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

func init() {
	// The web UI's pages are documented as text/html strings.
	if openapi3filter.RegisteredBodyDecoder("text/html") == nil {
		openapi3filter.RegisterBodyDecoder("text/html", openapi3filter.PlainBodyDecoder)
	}
}

// API is an HTTP client for tests that checks every response it receives
// against the OpenAPI document, so the document cannot drift from the code.
type API struct {
	tb     testing.TB
	base   string
	router routers.Router
	client *http.Client
}

// NewAPI makes a client for the server at baseURL documented by doc.
func NewAPI(tb testing.TB, baseURL string, doc *openapi3.T) *API {
	tb.Helper()
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		tb.Fatalf("openapi router: %v", err)
	}
	return &API{tb: tb, base: strings.TrimRight(baseURL, "/"), router: router, client: &http.Client{}}
}

// Response is what came back.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Decode unmarshals the body into v, failing the test if it cannot.
func (r *Response) Decode(tb testing.TB, v any) {
	tb.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		tb.Fatalf("decode response %d %s: %v", r.Status, r.Body, err)
	}
}

// Problem decodes an application/problem+json body, failing the test if
// the response is not one.
func (r *Response) Problem(tb testing.TB) map[string]any {
	tb.Helper()
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		tb.Fatalf("want a problem+json body, got %q: %s", ct, r.Body)
	}
	var p map[string]any
	r.Decode(tb, &p)
	return p
}

// Option changes a request.
type Option func(*http.Request)

// Bearer authenticates the request with a session token.
func Bearer(token string) Option {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) }
}

// Header sets a request header.
func Header(k, v string) Option { return func(r *http.Request) { r.Header.Set(k, v) } }

// Raw is a request body sent exactly as given.
type Raw []byte

// Do sends a request. body is nil, Raw, or a value encoded as JSON.
func (a *API) Do(method, path string, body any, opts ...Option) *Response {
	a.tb.Helper()
	var rd io.Reader
	var sent []byte
	switch b := body.(type) {
	case nil:
	case Raw:
		sent = b
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			a.tb.Fatalf("encode request: %v", err)
		}
		sent = raw
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, a.base+path, rd)
	if err != nil {
		a.tb.Fatalf("new request: %v", err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, o := range opts {
		o(req)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		a.tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		a.tb.Fatalf("read response of %s %s: %v", method, path, err)
	}
	out := &Response{Status: resp.StatusCode, Header: resp.Header, Body: raw}
	a.validate(req, sent, out)
	return out
}

// validate checks a response against the document. Errors are always
// problem+json; documented routes must answer as documented.
func (a *API) validate(req *http.Request, sent []byte, resp *Response) {
	a.tb.Helper()
	if resp.Status >= 400 && !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json") {
		a.tb.Errorf("%s %s: error %d is not problem+json: %q %s", req.Method, req.URL.Path, resp.Status, resp.Header.Get("Content-Type"), resp.Body)
	}
	route, params, err := a.router.FindRoute(req)
	if err != nil {
		if resp.Status == http.StatusNotFound || resp.Status == http.StatusMethodNotAllowed {
			return // an undocumented path or method, answered as such
		}
		a.tb.Errorf("%s %s answered %d but is not in the OpenAPI document: %v", req.Method, req.URL.Path, resp.Status, err)
		return
	}
	if resp.Status < 300 {
		// What the shop took must be what the document allows: a client
		// generated from it could not send anything else.
		taken := req.Clone(req.Context())
		taken.Body = io.NopCloser(bytes.NewReader(sent))
		err := openapi3filter.ValidateRequest(context.Background(), &openapi3filter.RequestValidationInput{
			Request: taken, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true},
		})
		if err != nil {
			a.tb.Errorf("%s %s answered %d to a request the OpenAPI document does not allow: %v", req.Method, req.URL, resp.Status, err)
		}
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 resp.Status,
		Header:                 resp.Header,
		Body:                   io.NopCloser(bytes.NewReader(resp.Body)),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		a.tb.Errorf("%s %s answered %d against the OpenAPI document: %v\nbody: %s", req.Method, req.URL.Path, resp.Status, err, resp.Body)
	}
}
