package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"time"
)

const (
	algorithm  = "AWS4-HMAC-SHA256"
	dateLayout = "20060102T150405Z"
	terminator = "aws4_request"
	authFormat = algorithm + " Credential=<key>/<yyyymmdd>/<region>/<service>/" + terminator + ", SignedHeaders=<names>, Signature=<hex>"
)

// Verifier checks requests against the one key pair the server accepts.
type Verifier struct {
	AccessKeyID, SecretAccessKey string
	Region                       string           // e.g. us-east-1; the credential scope's region must equal it
	Service                      string           // "dms"
	MaxSkew                      time.Duration    // 0 means 15 minutes
	Now                          func() time.Time // nil means time.Now
}

// Verify checks r's Authorization header (AWS4-HMAC-SHA256 Credential=...,
// SignedHeaders=..., Signature=...) against body, the full request body
// already read by the caller; r.Body is not read. It returns nil only if the
// signature matches, else an error wrapping one of the sentinels.
func (v *Verifier) Verify(r *http.Request, body []byte) error {
	// An empty secret would let anyone sign, so a misconfigured server refuses all.
	if v.AccessKeyID == "" || v.SecretAccessKey == "" {
		return fmt.Errorf("%w: the server has no key pair configured; start it with an access key id and secret", ErrUnknownKey)
	}
	auth := r.Header.Get("Authorization")
	if auth == "" {
		return fmt.Errorf("%w: there is no Authorization header; sign the request with the server's key pair as the AWS SDKs and CLI do", ErrUnsigned)
	}
	a, err := parseAuthorization(auth)
	if err != nil {
		return err
	}
	// The key id is public, so a plain comparison leaks nothing; it is not
	// echoed because a client that swapped id and secret would log its secret.
	if a.keyID != v.AccessKeyID {
		return fmt.Errorf("%w: the Credential's access key id is not the one this server accepts; sign with the key pair the server was started with", ErrUnknownKey)
	}
	amzDate := r.Header.Get("X-Amz-Date")
	at, err := time.Parse(dateLayout, amzDate)
	if err != nil || len(amzDate) != len(dateLayout) {
		return fmt.Errorf("%w: X-Amz-Date is missing or not of the form %s; sign with a client that sets it", ErrUnsigned, dateLayout)
	}
	if err := v.checkScope(a, amzDate[:8]); err != nil {
		return err
	}
	if err := v.checkTime(at); err != nil {
		return err
	}

	payload := hexSHA256(body)
	// Only a real digest is accepted: UNSIGNED-PAYLOAD or streaming markers
	// would leave the body unprotected.
	if h := r.Header.Get("X-Amz-Content-Sha256"); h != "" && h != payload {
		return fmt.Errorf("%w: X-Amz-Content-Sha256 is not the SHA-256 of the body; send the body unchanged after signing (unsigned and streaming payloads are not accepted)", ErrSignature)
	}
	creq, err := canonicalRequest(r, a.signedHeaders, payload)
	if err != nil {
		return err
	}
	scope := strings.Join([]string{a.date, a.region, a.service, terminator}, "/")
	toSign := strings.Join([]string{algorithm, amzDate, scope, hexSHA256([]byte(creq))}, "\n")
	key := []byte("AWS4" + v.SecretAccessKey)
	for _, s := range []string{a.date, a.region, a.service, terminator} {
		key = hmacSHA256(key, s)
	}
	want := hex.EncodeToString(hmacSHA256(key, toSign))
	if !hmac.Equal([]byte(want), []byte(a.signature)) {
		return fmt.Errorf("%w: check the secret access key, and that nothing (a proxy, the client after signing) changed the method, path, query, signed headers or body", ErrSignature)
	}
	return nil
}

// checkScope compares the credential scope with the server's region and
// service and with the day of X-Amz-Date.
func (v *Verifier) checkScope(a authorization, day string) error {
	switch {
	case a.date != day:
		return fmt.Errorf("%w: the scope date %q is not the day of X-Amz-Date (%s); sign with one clock reading", ErrScope, a.date, day)
	case a.region != v.Region:
		return fmt.Errorf("%w: the scope region %q is not this server's region %q; configure the client for %s", ErrScope, a.region, v.Region, v.Region)
	case a.service != v.Service:
		return fmt.Errorf("%w: the scope service %q is not %q; sign for the %s service", ErrScope, a.service, v.Service, v.Service)
	}
	return nil
}

// checkTime rejects requests signed too long ago, which limits replay, or
// too far ahead, which a wrong client clock produces.
func (v *Verifier) checkTime(at time.Time) error {
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	skew := v.MaxSkew
	if skew == 0 {
		skew = 15 * time.Minute
	}
	t := now()
	if d := t.Sub(at); d > skew || d < -skew {
		return fmt.Errorf("%w: the request was signed at %s but the server's time is %s (allowed skew %s); correct the client's clock and sign again",
			ErrExpired, at.Format(time.RFC3339), t.UTC().Format(time.RFC3339), skew)
	}
	return nil
}

// authorization is the parsed Authorization header.
type authorization struct {
	keyID, date, region, service string
	signedHeaders                string // as sent, because it enters the canonical request verbatim
	signature                    string
}

func parseAuthorization(h string) (authorization, error) {
	malformed := func(what string) error {
		return fmt.Errorf("%w: %s; the Authorization header must look like %q", ErrUnsigned, what, authFormat)
	}
	rest, ok := strings.CutPrefix(h, algorithm+" ")
	if !ok {
		return authorization{}, malformed("it does not start with " + algorithm)
	}
	parts := map[string]string{}
	for p := range strings.SplitSeq(rest, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(p), "=")
		switch {
		case !ok || val == "":
			return authorization{}, malformed("a part is not name=value")
		case k != "Credential" && k != "SignedHeaders" && k != "Signature":
			return authorization{}, malformed("a part is not Credential, SignedHeaders or Signature")
		case parts[k] != "":
			return authorization{}, malformed(k + " appears twice")
		}
		parts[k] = val
	}
	for _, k := range []string{"Credential", "SignedHeaders", "Signature"} {
		if parts[k] == "" {
			return authorization{}, malformed(k + "= is missing")
		}
	}
	scope := strings.Split(parts["Credential"], "/")
	if len(scope) != 5 || scope[4] != terminator || scope[0] == "" || scope[1] == "" || scope[2] == "" || scope[3] == "" {
		return authorization{}, malformed("Credential is not <key>/<date>/<region>/<service>/" + terminator)
	}
	signed := parts["SignedHeaders"]
	prev := ""
	hasHost := false
	for name := range strings.SplitSeq(signed, ";") {
		// Sorted, lowercase, unique names are what the spec prescribes, and
		// requiring them keeps one header from being counted twice.
		if name == "" || name != strings.ToLower(name) || name <= prev {
			return authorization{}, malformed("SignedHeaders is not lowercase names sorted and separated by ';'")
		}
		hasHost = hasHost || name == "host"
		prev = name
	}
	if !hasHost {
		return authorization{}, malformed("SignedHeaders does not include host")
	}
	return authorization{
		keyID:         scope[0],
		date:          scope[1],
		region:        scope[2],
		service:       scope[3],
		signedHeaders: signed,
		signature:     parts["Signature"],
	}, nil
}

func hexSHA256(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func hmacSHA256(key []byte, s string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(s))
	return h.Sum(nil)
}
