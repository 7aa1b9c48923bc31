package lambdahttp

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/aws/aws-lambda-go/events"
)

// Handler returns the Lambda handler that serves h for API Gateway HTTP API
// (payload format 2.0) events. It never returns an error: API Gateway would
// show the client only a bare 500, so an event that does not make a request
// is answered 400 with the reason instead. A panic in h is left to the
// Lambda runtime, which reports it and replaces the process.
func Handler(h http.Handler) func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	return func(ctx context.Context, e events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		r, err := newRequest(ctx, e)
		if err != nil {
			return badRequest(err), nil
		}
		w := &recorder{header: http.Header{}}
		h.ServeHTTP(w, r)
		return w.response(r.Method), nil
	}
}

// newRequest rebuilds the request the client sent. The path and query keep
// their bytes, not a re-encoding, because a SigV4 signature covers them.
// IAMCallerHeader carries the ARN of the caller that API Gateway's AWS_IAM
// authorizer verified, set from the event's request context only.
const IAMCallerHeader = "X-Sluice-Iam-Caller"

func newRequest(ctx context.Context, e events.APIGatewayV2HTTPRequest) (*http.Request, error) {
	method := e.RequestContext.HTTP.Method
	if method == "" {
		return nil, errors.New("the event has no requestContext.http.method: set the API Gateway integration's payload format version to 2.0")
	}
	raw := e.RawPath
	if raw == "" {
		raw = "/"
	}
	path, err := url.PathUnescape(raw)
	if err != nil {
		return nil, fmt.Errorf("the path %q is not validly percent-encoded", raw)
	}
	body := []byte(e.Body)
	if e.IsBase64Encoded {
		if body, err = base64.StdEncoding.DecodeString(e.Body); err != nil {
			return nil, fmt.Errorf("the body is marked base64-encoded but does not decode: %v", err)
		}
	}
	r, err := http.NewRequestWithContext(ctx, method, "/", bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("method %q: %v", method, err)
	}
	// RawPath is kept even where it equals the default encoding of Path:
	// EscapedPath returns it whenever it is a valid encoding of Path.
	r.URL = &url.URL{Path: path, RawPath: raw, RawQuery: e.RawQueryString}
	r.RequestURI = r.URL.RequestURI()
	if major, minor, ok := http.ParseHTTPVersion(e.RequestContext.HTTP.Protocol); ok {
		r.Proto, r.ProtoMajor, r.ProtoMinor = e.RequestContext.HTTP.Protocol, major, minor
	}

	// Payload format 2.0 joins repeated headers with commas into one value;
	// that one value is what SigV4 canonicalizes too, so it stays joined.
	r.Header = make(http.Header, len(e.Headers)+1)
	for k, v := range e.Headers {
		r.Header.Add(k, v)
	}
	// Format 2.0 moves cookies out of the headers into their own field.
	if len(e.Cookies) > 0 {
		r.Header.Add("Cookie", strings.Join(e.Cookies, "; "))
	}
	// net/http keeps Host out of the header map; handlers look in r.Host.
	r.Host = r.Header.Get("Host")
	if r.Host == "" {
		r.Host = e.RequestContext.DomainName
	}
	r.Header.Del("Host")
	// The caller API Gateway's IAM authorizer verified, and only that: a
	// client cannot claim to be one by sending the header itself.
	r.Header.Del(IAMCallerHeader)
	if a := e.RequestContext.Authorizer; a != nil && a.IAM != nil && a.IAM.UserARN != "" {
		r.Header.Set(IAMCallerHeader, a.IAM.UserARN)
	}
	if ip := e.RequestContext.HTTP.SourceIP; ip != "" {
		// The source port is not in the event; port 0 keeps RemoteAddr in
		// the host:port form net/http gives, which net.SplitHostPort needs.
		r.RemoteAddr = net.JoinHostPort(ip, "0")
	}
	return r, nil
}

func badRequest(err error) events.APIGatewayV2HTTPResponse {
	return events.APIGatewayV2HTTPResponse{
		StatusCode: http.StatusBadRequest,
		Headers:    map[string]string{"Content-Type": "text/plain; charset=utf-8"},
		Body:       "bad request: " + err.Error() + "\n",
	}
}
