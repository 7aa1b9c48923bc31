// Package sigv4 verifies AWS Signature Version 4 on incoming requests: a
// request and its body come in, nil or an error saying what is wrong comes
// out. It rebuilds the canonical request from exactly the headers the client
// signed, so any conforming client (the AWS SDKs, the CLI) verifies.
package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// Sentinel errors; each comes wrapped with what exactly is wrong.
var (
	ErrUnsigned   = errors.New("the request is not signed with AWS Signature Version 4")
	ErrUnknownKey = errors.New("the access key is not known")
	ErrScope      = errors.New("the credential scope does not match")
	ErrExpired    = errors.New("the request time is too far from the server's")
	ErrSignature  = errors.New("the signature does not match")
)

// Verifier checks requests against the one key pair the server accepts.
type Verifier struct {
	AccessKeyID, SecretAccessKey string
	Region, Service              string
	MaxSkew                      time.Duration    // 0 means 15 minutes
	Now                          func() time.Time // nil means time.Now
}

const algorithm = "AWS4-HMAC-SHA256"

// Verify checks r's Authorization header against body.
func (v *Verifier) Verify(r *http.Request, body []byte) error {
	auth := r.Header.Get("Authorization")
	if !strings.HasPrefix(auth, algorithm+" ") {
		return fmt.Errorf("%w: sign it with the key pair the server was given (SLUICE_ACCESS_KEY_ID), as the AWS SDKs and CLI do", ErrUnsigned)
	}
	parts := map[string]string{}
	for _, p := range strings.Split(strings.TrimPrefix(auth, algorithm+" "), ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(p), "=")
		if ok {
			parts[k] = val
		}
	}
	cred, signed, sig := parts["Credential"], parts["SignedHeaders"], parts["Signature"]
	if cred == "" || signed == "" || sig == "" {
		return fmt.Errorf("%w: the Authorization header lacks Credential, SignedHeaders or Signature", ErrUnsigned)
	}
	scope := strings.Split(cred, "/")
	if len(scope) != 5 || scope[4] != "aws4_request" {
		return fmt.Errorf("%w: Credential must be <key>/<date>/<region>/<service>/aws4_request", ErrUnsigned)
	}
	if scope[0] != v.AccessKeyID {
		return fmt.Errorf("%w: sign with the access key the server was started with", ErrUnknownKey)
	}
	amzDate := r.Header.Get("X-Amz-Date")
	at, err := time.Parse("20060102T150405Z", amzDate)
	if err != nil {
		return fmt.Errorf("%w: X-Amz-Date is missing or not like 20060102T150405Z", ErrUnsigned)
	}
	if scope[1] != amzDate[:8] || scope[2] != v.Region || scope[3] != v.Service {
		return fmt.Errorf("%w: the scope %s/%s/%s must be %s/%s/%s", ErrScope, scope[1], scope[2], scope[3], amzDate[:8], v.Region, v.Service)
	}
	now := time.Now()
	if v.Now != nil {
		now = v.Now()
	}
	skew := v.MaxSkew
	if skew == 0 {
		skew = 15 * time.Minute
	}
	if d := now.Sub(at); d > skew || d < -skew {
		return fmt.Errorf("%w: the request was signed at %s, the server's time is %s; correct the client's clock", ErrExpired, at.Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	sum := sha256.Sum256(body)
	payload := hex.EncodeToString(sum[:])
	if h := r.Header.Get("X-Amz-Content-Sha256"); h != "" && h != payload {
		return fmt.Errorf("%w: the body does not match X-Amz-Content-Sha256", ErrSignature)
	}
	var canon strings.Builder
	for _, name := range strings.Split(signed, ";") {
		var vals []string
		if name == "host" {
			vals = []string{r.Host}
		} else {
			vals = r.Header.Values(name)
		}
		if len(vals) == 0 {
			return fmt.Errorf("%w: the signed header %s is missing", ErrSignature, name)
		}
		for i, val := range vals {
			vals[i] = strings.Join(strings.Fields(val), " ")
		}
		canon.WriteString(name + ":" + strings.Join(vals, ",") + "\n")
	}
	creq := strings.Join([]string{r.Method, canonicalPath(r.URL), canonicalQuery(r.URL), canon.String(), signed, payload}, "\n")
	csum := sha256.Sum256([]byte(creq))
	scopeStr := strings.Join(scope[1:], "/")
	toSign := strings.Join([]string{algorithm, amzDate, scopeStr, hex.EncodeToString(csum[:])}, "\n")
	key := []byte("AWS4" + v.SecretAccessKey)
	for _, s := range scope[1:] {
		key = mac(key, s)
	}
	want := hex.EncodeToString(mac(key, toSign))
	if !hmac.Equal([]byte(want), []byte(sig)) {
		return fmt.Errorf("%w: check the secret access key and that nothing changed the request after signing", ErrSignature)
	}
	return nil
}

func mac(key []byte, s string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(s))
	return h.Sum(nil)
}

// canonicalPath encodes each path segment as SigV4 does for services other
// than S3.
func canonicalPath(u *url.URL) string {
	p := u.EscapedPath()
	if p == "" {
		return "/"
	}
	segs := strings.Split(p, "/")
	for i, s := range segs {
		raw, err := url.PathUnescape(s)
		if err != nil {
			raw = s
		}
		segs[i] = encode(raw)
	}
	return strings.Join(segs, "/")
}

func canonicalQuery(u *url.URL) string {
	q := u.Query()
	var pairs []string
	for k, vs := range q {
		for _, v := range vs {
			pairs = append(pairs, encode(k)+"="+encode(v))
		}
	}
	sort.Strings(pairs)
	return strings.Join(pairs, "&")
}

// encode is RFC 3986 percent-encoding of everything but unreserved bytes.
func encode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if ('A' <= c && c <= 'Z') || ('a' <= c && c <= 'z') || ('0' <= c && c <= '9') || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}
