package lambdahttp_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/sluicedb/sluice/infra/lambdahttp"
)

// seen is what the handler under the adapter received.
type seen struct {
	r    *http.Request
	body []byte
}

// capture returns a handler that records its request and answers 200.
func capture(t *testing.T) (http.Handler, *seen) {
	s := &seen{}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("read the body: %v", err)
		}
		s.r, s.body = r, b
	}), s
}

func event(method, rawPath, rawQuery string) events.APIGatewayV2HTTPRequest {
	return events.APIGatewayV2HTTPRequest{
		Version: "2.0", RawPath: rawPath, RawQueryString: rawQuery,
		Headers: map[string]string{"host": "api.example.test"},
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			DomainName: "api.example.test",
			HTTP:       events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: method, Protocol: "HTTP/1.1", SourceIP: "203.0.113.9"},
		},
	}
}

func serve(t *testing.T, h http.Handler, e events.APIGatewayV2HTTPRequest) events.APIGatewayV2HTTPResponse {
	t.Helper()
	resp, err := lambdahttp.Handler(h)(context.Background(), e)
	if err != nil {
		t.Fatalf("the adapter returned an error, which API Gateway would turn into a bare 500: %v", err)
	}
	return resp
}

func TestPathAndQueryPassThrough(t *testing.T) {
	cases := []struct {
		name, rawPath, rawQuery string
		path                    string // r.URL.Path: decoded
		requestURI              string
	}{
		// The plain case must not grow a RawPath-only spelling.
		{"plain", "/replications/cfg-1", "", "/replications/cfg-1", "/replications/cfg-1"},
		// An escaped slash stays escaped: decoding it would change the
		// segments SigV4 signed.
		{"escaped slash", "/replications/a%2Fb", "", "/replications/a/b", "/replications/a%2Fb"},
		// %7E is not the default encoding of ~; re-encoding would drop it.
		{"needlessly escaped", "/x%7Ey", "", "/x~y", "/x%7Ey"},
		// The query keeps its order, duplicates, empty values and escapes.
		{"query bytes", "/", "b=2&a=1&a=%20x&empty=&plus=a+b&t=%2a", "/", "/?b=2&a=1&a=%20x&empty=&plus=a+b&t=%2a"},
		// A query that does not parse still reaches the handler unchanged:
		// refusing it is the handler's call.
		{"unparsable query", "/", "a=%zz;b", "/", "/?a=%zz;b"},
		// rawPath is always set by API Gateway; an empty one means the root.
		{"empty path", "", "x=1", "/", "/?x=1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h, s := capture(t)
			resp := serve(t, h, event(http.MethodGet, tc.rawPath, tc.rawQuery))
			if resp.StatusCode != http.StatusOK || s.r == nil {
				t.Fatalf("status %d body %q; the handler was called: %v", resp.StatusCode, resp.Body, s.r != nil)
			}
			want := tc.rawPath
			if want == "" {
				want = "/"
			}
			if got := s.r.URL.EscapedPath(); got != want {
				t.Errorf("EscapedPath = %q, want %q", got, want)
			}
			if s.r.URL.Path != tc.path {
				t.Errorf("Path = %q, want %q", s.r.URL.Path, tc.path)
			}
			if s.r.URL.RawQuery != tc.rawQuery {
				t.Errorf("RawQuery = %q, want %q", s.r.URL.RawQuery, tc.rawQuery)
			}
			if s.r.RequestURI != tc.requestURI {
				t.Errorf("RequestURI = %q, want %q", s.r.RequestURI, tc.requestURI)
			}
		})
	}
}

func TestBody(t *testing.T) {
	binary := []byte{0x00, 0xff, 0xfe, '{', 0x80}
	cases := []struct {
		name   string
		body   string
		base64 bool
		want   []byte
	}{
		{"text", `{"MaxRecords": 20}`, false, []byte(`{"MaxRecords": 20}`)},
		{"base64", base64.StdEncoding.EncodeToString(binary), true, binary},
		{"empty", "", false, []byte{}},
		{"empty base64", "", true, []byte{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h, s := capture(t)
			e := event(http.MethodPost, "/", "")
			e.Body, e.IsBase64Encoded = tc.body, tc.base64
			serve(t, h, e)
			if s.r == nil {
				t.Fatal("the handler was not called")
			}
			if !bytes.Equal(s.body, tc.want) {
				t.Errorf("body = %q, want %q", s.body, tc.want)
			}
			if s.r.ContentLength != int64(len(tc.want)) {
				t.Errorf("ContentLength = %d, want %d", s.r.ContentLength, len(tc.want))
			}
		})
	}
}

// TestBadEvents: events that make no request are answered 400 with the
// reason, and the handler never runs.
func TestBadEvents(t *testing.T) {
	cases := []struct {
		name string
		edit func(*events.APIGatewayV2HTTPRequest)
		says string
	}{
		{"bad base64", func(e *events.APIGatewayV2HTTPRequest) { e.Body, e.IsBase64Encoded = "not base64!", true }, "base64"},
		// A payload format 1.0 event decodes into the 2.0 shape without a
		// method; the reason names the setting to fix.
		{"format 1.0 event", func(e *events.APIGatewayV2HTTPRequest) { e.RequestContext.HTTP.Method = "" }, "payload format version to 2.0"},
		{"bad path escape", func(e *events.APIGatewayV2HTTPRequest) { e.RawPath = "/a%zz" }, "percent-encoded"},
		{"bad method", func(e *events.APIGatewayV2HTTPRequest) { e.RequestContext.HTTP.Method = "GE T" }, "method"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h, s := capture(t)
			e := event(http.MethodPost, "/", "")
			tc.edit(&e)
			resp := serve(t, h, e)
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(resp.Body, tc.says) {
				t.Fatalf("status %d body %q; want 400 saying %q", resp.StatusCode, resp.Body, tc.says)
			}
			if s.r != nil {
				t.Fatal("the handler ran for an event that makes no request")
			}
		})
	}
}

func TestCookies(t *testing.T) {
	h, s := capture(t)
	e := event(http.MethodGet, "/", "")
	e.Cookies = []string{"session=s1", "theme=dark"}
	serve(t, h, e)
	if got := s.r.Header.Values("Cookie"); !slices.Equal(got, []string{"session=s1; theme=dark"}) {
		t.Fatalf("Cookie header = %q", got)
	}
	if c, err := s.r.Cookie("theme"); err != nil || c.Value != "dark" {
		t.Fatalf("r.Cookie(theme) = %v, %v", c, err)
	}
}

func TestHeaders(t *testing.T) {
	type key struct{}
	h, s := capture(t)
	e := event(http.MethodPost, "/", "")
	e.Headers = map[string]string{
		"host":         "dms.example.test",
		"accept":       "application/json,text/plain", // two Accept headers, joined by API Gateway
		"x-amz-target": "AmazonDMSv20160101.DescribeEndpoints",
	}
	ctx := context.WithValue(context.Background(), key{}, "invocation")
	if _, err := lambdahttp.Handler(h)(ctx, e); err != nil {
		t.Fatal(err)
	}
	r := s.r
	if got := r.Header.Values("Accept"); !slices.Equal(got, []string{"application/json,text/plain"}) {
		t.Errorf("Accept = %q: the joined value must stay one value", got)
	}
	if r.Header.Get("X-Amz-Target") != "AmazonDMSv20160101.DescribeEndpoints" {
		t.Errorf("X-Amz-Target = %q", r.Header.Get("X-Amz-Target"))
	}
	if r.Host != "dms.example.test" || r.Header.Get("Host") != "" {
		t.Errorf("Host = %q, Host header = %q; want the header's host in r.Host only", r.Host, r.Header.Get("Host"))
	}
	if r.RemoteAddr != "203.0.113.9:0" {
		t.Errorf("RemoteAddr = %q", r.RemoteAddr)
	}
	if r.Context().Value(key{}) != "invocation" {
		t.Error("the invocation's context did not reach the handler")
	}
	if r.Proto != "HTTP/1.1" || r.Method != http.MethodPost {
		t.Errorf("Proto %q Method %q", r.Proto, r.Method)
	}

	// Without a host header the API's domain name stands in.
	delete(e.Headers, "host")
	e.RequestContext.HTTP.SourceIP = "2001:db8::1"
	serve(t, h, e)
	if s.r.Host != "api.example.test" {
		t.Errorf("Host without a host header = %q, want the domain name", s.r.Host)
	}
	if s.r.RemoteAddr != "[2001:db8::1]:0" {
		t.Errorf("IPv6 RemoteAddr = %q", s.r.RemoteAddr)
	}
}

// TestRecordedEvent decodes an event as Lambda delivers it, so the JSON
// names (cookies, rawPath, isBase64Encoded, ...) are covered too.
func TestRecordedEvent(t *testing.T) {
	b, err := os.ReadFile("testdata/http-api-event.json")
	if err != nil {
		t.Fatal(err)
	}
	var e events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatal(err)
	}
	h, s := capture(t)
	serve(t, h, e)
	r := s.r
	switch {
	case r.Method != http.MethodPost:
		t.Errorf("Method = %q", r.Method)
	case r.URL.EscapedPath() != "/replications/orders%2Dcfg" || r.URL.Path != "/replications/orders-cfg":
		t.Errorf("path %q / %q", r.URL.EscapedPath(), r.URL.Path)
	case r.URL.RawQuery != "verbose=1&tag=a%2Cb&tag=c":
		t.Errorf("RawQuery = %q", r.URL.RawQuery)
	case string(s.body) != "{}":
		t.Errorf("body = %q", s.body)
	case r.Header.Get("Cookie") != "session=s1; theme=dark":
		t.Errorf("Cookie = %q", r.Header.Get("Cookie"))
	case r.Host != "abc123.execute-api.eu-west-1.amazonaws.com":
		t.Errorf("Host = %q", r.Host)
	case r.Header.Get("Content-Length") != "2" || r.ContentLength != 2:
		t.Errorf("Content-Length header %q, ContentLength %d", r.Header.Get("Content-Length"), r.ContentLength)
	case r.RemoteAddr != "198.51.100.7:0":
		t.Errorf("RemoteAddr = %q", r.RemoteAddr)
	}
}

func TestResponse(t *testing.T) {
	binary := []byte{0x89, 'P', 'N', 'G', 0x00, 0xff}
	cases := []struct {
		name    string
		method  string
		handler http.HandlerFunc
		check   func(t *testing.T, resp events.APIGatewayV2HTTPResponse)
	}{
		{"status, joined headers and cookies", http.MethodPost, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/x-amz-json-1.1")
			w.Header().Add("X-Multi", "a")
			w.Header().Add("X-Multi", "b")
			http.SetCookie(w, &http.Cookie{Name: "one", Value: "1"})
			// A cookie's Expires holds a comma: joining it with another
			// cookie would break both.
			w.Header().Add("Set-Cookie", "two=2; Expires=Wed, 21 Oct 2037 07:28:00 GMT")
			w.WriteHeader(http.StatusCreated)
			_, _ = io.WriteString(w, `{"ok":true}`)
		}, func(t *testing.T, resp events.APIGatewayV2HTTPResponse) {
			if resp.StatusCode != http.StatusCreated || resp.Body != `{"ok":true}` || resp.IsBase64Encoded {
				t.Errorf("status %d body %q base64 %v", resp.StatusCode, resp.Body, resp.IsBase64Encoded)
			}
			if resp.Headers["X-Multi"] != "a,b" || resp.Headers["Content-Type"] != "application/x-amz-json-1.1" {
				t.Errorf("headers %v", resp.Headers)
			}
			if !slices.Equal(resp.Cookies, []string{"one=1", "two=2; Expires=Wed, 21 Oct 2037 07:28:00 GMT"}) {
				t.Errorf("cookies %q", resp.Cookies)
			}
			if _, ok := resp.Headers["Set-Cookie"]; ok {
				t.Error("Set-Cookie also went out as a header")
			}
		}},
		{"binary body", http.MethodGet, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "image/png")
			_, _ = w.Write(binary)
		}, func(t *testing.T, resp events.APIGatewayV2HTTPResponse) {
			got, err := base64.StdEncoding.DecodeString(resp.Body)
			if !resp.IsBase64Encoded || err != nil || !bytes.Equal(got, binary) {
				t.Errorf("base64 %v body %q (%v)", resp.IsBase64Encoded, resp.Body, err)
			}
			if resp.StatusCode != http.StatusOK {
				t.Errorf("status %d, want the implied 200", resp.StatusCode)
			}
		}},
		{"UTF-8 text stays text", http.MethodGet, func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, "naïve ✓\n")
		}, func(t *testing.T, resp events.APIGatewayV2HTTPResponse) {
			if resp.IsBase64Encoded || resp.Body != "naïve ✓\n" {
				t.Errorf("base64 %v body %q", resp.IsBase64Encoded, resp.Body)
			}
			// As under net/http, an untyped body gets a sniffed type.
			if resp.Headers["Content-Type"] != "text/plain; charset=utf-8" {
				t.Errorf("Content-Type = %q", resp.Headers["Content-Type"])
			}
		}},
		{"nothing written", http.MethodGet, func(w http.ResponseWriter, r *http.Request) {}, func(t *testing.T, resp events.APIGatewayV2HTTPResponse) {
			if resp.StatusCode != http.StatusOK || resp.Body != "" {
				t.Errorf("status %d body %q", resp.StatusCode, resp.Body)
			}
		}},
		{"header changed after WriteHeader", http.MethodGet, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Before", "1")
			w.WriteHeader(http.StatusAccepted)
			w.Header().Set("X-After", "1")
		}, func(t *testing.T, resp events.APIGatewayV2HTTPResponse) {
			if resp.StatusCode != http.StatusAccepted || resp.Headers["X-Before"] != "1" || resp.Headers["X-After"] != "" {
				t.Errorf("status %d headers %v; net/http sends only the header as of WriteHeader", resp.StatusCode, resp.Headers)
			}
		}},
		{"informational status first", http.MethodGet, func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusEarlyHints)
			w.WriteHeader(http.StatusTeapot)
		}, func(t *testing.T, resp events.APIGatewayV2HTTPResponse) {
			if resp.StatusCode != http.StatusTeapot {
				t.Errorf("status %d, want the final one", resp.StatusCode)
			}
		}},
		{"no body with 204", http.MethodGet, func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusNoContent)
			if _, err := io.WriteString(w, "x"); err != http.ErrBodyNotAllowed {
				t.Errorf("Write after 204: %v, want ErrBodyNotAllowed", err)
			}
		}, func(t *testing.T, resp events.APIGatewayV2HTTPResponse) {
			if resp.Body != "" {
				t.Errorf("body %q", resp.Body)
			}
		}},
		{"HEAD has no body", http.MethodHead, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, "{}")
		}, func(t *testing.T, resp events.APIGatewayV2HTTPResponse) {
			if resp.Body != "" || resp.Headers["Content-Type"] != "application/json" {
				t.Errorf("body %q headers %v", resp.Body, resp.Headers)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.check(t, serve(t, tc.handler, event(tc.method, "/", "")))
		})
	}
}
