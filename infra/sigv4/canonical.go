package sigv4

import (
	"cmp"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// canonicalRequest builds the SigV4 canonical request for r from the headers
// named in signedHeaders, and only those: adding or dropping one would change
// the string the client signed.
func canonicalRequest(r *http.Request, signedHeaders, payloadHash string) (string, error) {
	query, err := canonicalQuery(r.URL.RawQuery)
	if err != nil {
		return "", err
	}
	var headers strings.Builder
	for name := range strings.SplitSeq(signedHeaders, ";") {
		vals := headerValues(r, name)
		if len(vals) == 0 {
			return "", fmt.Errorf("%w: the signed header %s is missing from the request; send every header listed in SignedHeaders", ErrSignature, name)
		}
		headers.WriteString(name)
		headers.WriteByte(':')
		for i, val := range vals {
			if i > 0 {
				headers.WriteByte(',')
			}
			headers.WriteString(trimSpaces(val))
		}
		headers.WriteByte('\n')
	}
	return strings.Join([]string{r.Method, canonicalURI(r.URL), query, headers.String(), signedHeaders, payloadHash}, "\n"), nil
}

// headerValues returns the values of the lowercase header name as received.
func headerValues(r *http.Request, name string) []string {
	switch {
	case name == "host":
		// net/http moves Host out of r.Header.
		if r.Host == "" {
			return nil
		}
		return []string{r.Host}
	case name == "content-length" && r.Header.Get("Content-Length") == "" && r.ContentLength > 0:
		// A request built in-process (not parsed off the wire) keeps its
		// length only in ContentLength; the Go SDK signs it from there.
		return []string{strconv.FormatInt(r.ContentLength, 10)}
	}
	return r.Header.Values(name)
}

// trimSpaces trims a header value and collapses inner runs of spaces, as the
// spec prescribes.
func trimSpaces(s string) string {
	s = strings.TrimSpace(s)
	if !strings.Contains(s, "  ") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == ' ' && s[i-1] == ' ' {
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// canonicalURI encodes each segment of the path as it came over the wire, so
// an escaped byte is escaped twice, as SigV4 requires for services other than
// S3 (and as the AWS SDKs and botocore sign). An empty path is "/".
func canonicalURI(u *url.URL) string {
	p := u.EscapedPath()
	if p == "" {
		return "/"
	}
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = encode(s)
	}
	return strings.Join(segs, "/")
}

// canonicalQuery sorts the encoded parameters by name, then value. A query
// that does not parse is refused rather than partly signed.
func canonicalQuery(raw string) (string, error) {
	q, err := url.ParseQuery(raw)
	if err != nil {
		return "", fmt.Errorf("%w: the query string does not parse (%v); percent-encode it", ErrSignature, err)
	}
	type param struct{ k, v string }
	var params []param
	for k, vs := range q {
		for _, v := range vs {
			params = append(params, param{encode(k), encode(v)})
		}
	}
	slices.SortFunc(params, func(a, b param) int {
		return cmp.Or(strings.Compare(a.k, b.k), strings.Compare(a.v, b.v))
	})
	pairs := make([]string, len(params))
	for i, p := range params {
		pairs[i] = p.k + "=" + p.v
	}
	return strings.Join(pairs, "&"), nil
}

// encode percent-encodes every byte outside RFC 3986's unreserved set, with
// uppercase hex.
func encode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}
