package lambdahttp

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
)

// recorder holds a whole response, because a Lambda function answers with
// one event rather than a stream. It follows net/http where a handler could
// tell the difference: the header is fixed at WriteHeader, bodies are
// refused where the status allows none, and an untyped body gets a sniffed
// Content-Type.
type recorder struct {
	header http.Header
	sent   http.Header // header as of WriteHeader
	status int
	body   bytes.Buffer
}

func (w *recorder) Header() http.Header { return w.header }

func (w *recorder) WriteHeader(code int) {
	// API Gateway cannot pass informational answers on; net/http, too, lets
	// them precede the final status.
	if w.status != 0 || code >= 100 && code < 200 {
		return
	}
	w.status = code
	w.sent = w.header.Clone()
}

func (w *recorder) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.status == http.StatusNoContent || w.status == http.StatusNotModified {
		return 0, http.ErrBodyNotAllowed
	}
	return w.body.Write(p)
}

// response is the event API Gateway turns into the HTTP response. Format
// 2.0 takes one value per header, so repeated values are joined with
// commas, except Set-Cookie, whose values may hold commas themselves and
// have a field of their own.
func (w *recorder) response(method string) events.APIGatewayV2HTTPResponse {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	body := w.body.Bytes()
	if method == http.MethodHead {
		body = nil
	}
	if _, typed := w.sent["Content-Type"]; !typed && len(body) > 0 {
		w.sent.Set("Content-Type", http.DetectContentType(body))
	}
	out := events.APIGatewayV2HTTPResponse{StatusCode: w.status, Headers: make(map[string]string, len(w.sent))}
	for k, vs := range w.sent {
		switch {
		case len(vs) == 0:
		case strings.EqualFold(k, "Set-Cookie"):
			out.Cookies = append(out.Cookies, vs...)
		default:
			out.Headers[k] = strings.Join(vs, ",")
		}
	}
	if utf8.Valid(body) {
		out.Body = string(body)
	} else {
		out.Body, out.IsBase64Encoded = base64.StdEncoding.EncodeToString(body), true
	}
	return out
}
