package sigv4

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

const (
	testKeyID   = "AKIASLUICETEST000001"
	testSecret  = "sluiceTestSecret/never+in+an+error+0001"
	testRegion  = "us-east-1"
	testService = "dms"
	testHost    = "dms.us-east-1.amazonaws.com"
)

// signedAt is when the SDK-signed requests are signed; the server's clock
// is set relative to it.
var signedAt = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

// hexRun finds anything shaped like a signature, which no message may carry.
var hexRun = regexp.MustCompile(`[0-9a-f]{64}`)

// request is what a client sends before signing.
type request struct {
	method, url string
	headers     map[string]string
	body        string
}

// describeEndpoints is the DMS JSON 1.1 call most tests start from.
var describeEndpoints = request{
	method: http.MethodPost,
	url:    "https://" + testHost + "/",
	headers: map[string]string{
		"Content-Type": "application/x-amz-json-1.1",
		"X-Amz-Target": "AmazonDMSv20160101.DescribeEndpoints",
	},
	body: `{"Filters":[{"Name":"endpoint-type","Values":["source"]}],"MaxRecords":20}`,
}

func (q request) build(t *testing.T) *http.Request {
	t.Helper()
	r, err := http.NewRequest(q.method, q.url, strings.NewReader(q.body))
	if err != nil {
		t.Fatalf("build request: %v", err)
	}
	for k, v := range q.headers {
		if strings.EqualFold(k, "Host") {
			r.Host = v
			continue
		}
		r.Header.Set(k, v)
	}
	return r
}

// signer says who signs, for what scope and when.
type signer struct {
	keyID, secret, token, region, service string
	at                                    time.Time
}

func serverKeys() signer {
	return signer{keyID: testKeyID, secret: testSecret, region: testRegion, service: testService, at: signedAt}
}

// sign signs r with the official aws-sdk-go-v2 signer.
func (s signer) sign(t *testing.T, r *http.Request, body []byte) {
	t.Helper()
	creds := aws.Credentials{AccessKeyID: s.keyID, SecretAccessKey: s.secret, SessionToken: s.token}
	if err := v4.NewSigner().SignHTTP(t.Context(), creds, r, hexSHA256(body), s.service, s.region, s.at); err != nil {
		t.Fatalf("sign: %v", err)
	}
}

func verifierAt(now time.Time) *Verifier {
	return &Verifier{AccessKeyID: testKeyID, SecretAccessKey: testSecret, Region: testRegion, Service: testService,
		Now: func() time.Time { return now }}
}

// checkMessage fails if err's message leaks the secret or a signature.
func checkMessage(t *testing.T, err error) {
	t.Helper()
	msg := err.Error()
	if strings.Contains(msg, testSecret) {
		t.Errorf("message contains the secret: %s", msg)
	}
	if hexRun.MatchString(msg) {
		t.Errorf("message contains a signature-like hex string: %s", msg)
	}
}

func TestVerifySDKSigned(t *testing.T) {
	withHeader := func(q request, k, v string) request {
		h := map[string]string{k: v}
		for hk, hv := range q.headers {
			h[hk] = hv
		}
		q.headers = h
		return q
	}
	tests := []struct {
		name  string
		req   request
		token string
		clock time.Duration // server clock minus signing time
	}{
		// The call the DMS SDK client makes most.
		{name: "describe endpoints", req: describeEndpoints},
		// A REST-style path and a query that must be sorted by name then value, including a repeated name and a prefix of another name.
		{name: "get with path and query", req: request{method: http.MethodGet, url: "https://" + testHost + "/replications/my-config?z=1&a-b=2&a=3&a=1"}},
		// Escaped path bytes are encoded twice and query spaces become %20, as the spec asks for non-S3 services.
		{name: "escaped path and query", req: request{method: http.MethodGet, url: "https://" + testHost + "/replications/my%20config/t%C3%A4bles?name=a%20b&filter=x%2Fy&empty="}},
		// Temporary credentials add X-Amz-Security-Token to the signed headers.
		{name: "session token", req: describeEndpoints, token: "IQoJb3JpZ2luX2VjEXAMPLETOKEN//+=="},
		// A client that declares the body hash signs X-Amz-Content-Sha256 too.
		{name: "content sha256 header", req: withHeader(describeEndpoints, "X-Amz-Content-Sha256", hexSHA256([]byte(describeEndpoints.body)))},
		// Header values are trimmed and inner runs of spaces collapsed before signing and verifying.
		{name: "header with runs of spaces", req: withHeader(describeEndpoints, "X-Amz-Meta-Note", "  two   spaces  here ")},
		// A server-side Host with a port is signed as sent.
		{name: "host with port", req: request{method: http.MethodPost, url: "http://localhost:4566/", headers: describeEndpoints.headers, body: "{}"}},
		// A client clock 14 minutes off is still inside the default skew.
		{name: "client clock 14 minutes behind", req: describeEndpoints, clock: 14 * time.Minute},
	}
	for _, tc := range tests {
		s := serverKeys()
		s.token = tc.token
		v := verifierAt(signedAt.Add(tc.clock))
		t.Run(tc.name, func(t *testing.T) {
			r := tc.req.build(t)
			s.sign(t, r, []byte(tc.req.body))
			if err := v.Verify(r, []byte(tc.req.body)); err != nil {
				t.Fatalf("Verify: %v\nAuthorization: %s", err, r.Header.Get("Authorization"))
			}
		})
		// A request parsed off the wire differs from one built in process:
		// Host and Content-Length arrive as the server's parser sets them.
		t.Run(tc.name+" over http", func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, err := io.ReadAll(r.Body)
				if err == nil {
					err = v.Verify(r, body)
				}
				if err != nil {
					http.Error(w, err.Error(), http.StatusForbidden)
				}
			}))
			defer srv.Close()
			r := tc.req.build(t)
			r.URL.Scheme, r.URL.Host, r.Host = "http", srv.Listener.Addr().String(), ""
			s.sign(t, r, []byte(tc.req.body))
			resp, err := srv.Client().Do(r)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				msg, _ := io.ReadAll(resp.Body)
				t.Fatalf("server: %s %s", resp.Status, msg)
			}
		})
	}
}

// botocoreSign signs q with botocore's SigV4Auth at the current time and
// returns the headers it produced.
const botocoreSign = `
import json, sys
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
a = json.loads(sys.argv[1])
req = AWSRequest(method=a["method"], url=a["url"], data=a["body"].encode(), headers=a["headers"])
SigV4Auth(Credentials(a["key"], a["secret"], a["token"] or None), a["service"], a["region"]).add_auth(req)
print(json.dumps(dict(req.headers.items())))
`

func TestVerifyBotocoreSigned(t *testing.T) {
	const install = "install python3-botocore (apt-get install python3-botocore, or pip install botocore): this test checks requests signed by the AWS CLI's library"
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Fatalf("python3 not found: %v; %s", err, install)
	}
	tests := []struct {
		name  string
		req   request
		token string
	}{
		// What `aws dms describe-endpoints` sends.
		{name: "describe endpoints", req: describeEndpoints},
		// botocore encodes the path itself; an escaped space must come out double-encoded on both sides.
		{name: "get with escaped path and query", req: request{method: http.MethodGet, url: "https://" + testHost + "/replications/my%20config?b=2&a=x%20y"}},
		// botocore signs the session token header as well.
		{name: "session token", req: describeEndpoints, token: "FwoGZXIvYXdzEXAMPLE+/="},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in, err := json.Marshal(map[string]any{
				"method": tc.req.method, "url": tc.req.url, "body": tc.req.body, "headers": tc.req.headers,
				"key": testKeyID, "secret": testSecret, "token": tc.token, "region": testRegion, "service": testService,
			})
			if err != nil {
				t.Fatal(err)
			}
			var stderr bytes.Buffer
			cmd := exec.CommandContext(t.Context(), python, "-c", botocoreSign, string(in))
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("botocore signing failed: %v\n%s\n%s", err, stderr.String(), install)
			}
			var headers map[string]string
			if err := json.Unmarshal(out, &headers); err != nil {
				t.Fatalf("botocore output %q: %v", out, err)
			}
			signed := tc.req
			signed.headers = headers
			r := signed.build(t)
			v := verifierAt(time.Time{})
			v.Now = nil // botocore signed with the real clock
			if err := v.Verify(r, []byte(tc.req.body)); err != nil {
				t.Fatalf("Verify: %v\nbotocore headers: %s", err, out)
			}
		})
	}
}

func TestVerifyRejects(t *testing.T) {
	setAuth := func(v string) func(*http.Request, *[]byte) {
		return func(r *http.Request, _ *[]byte) { r.Header.Set("Authorization", v) }
	}
	clock := func(d time.Duration) func(*Verifier) {
		return func(v *Verifier) { v.Now = func() time.Time { return signedAt.Add(d) } }
	}
	const scope = "Credential=" + testKeyID + "/20260314/us-east-1/dms/aws4_request"
	const sig = "Signature=0000000000000000000000000000000000000000000000000000000000000000"
	tests := []struct {
		name       string
		beforeSign func(*http.Request)          // the client's request as signed
		signAs     func(*signer)                // nil: the server's key pair, scope and time
		change     func(*http.Request, *[]byte) // what happens after signing
		server     func(*Verifier)              // nil: the server's configuration, clock at signing time
		want       error
		mention    string // the message must say this
	}{
		// The most common mistake: an unsigned client.
		{name: "no authorization", change: func(r *http.Request, _ *[]byte) { r.Header.Del("Authorization") }, want: ErrUnsigned, mention: "no Authorization"},
		// Another scheme must not be taken for SigV4.
		{name: "basic auth", change: setAuth("Basic dXNlcjpwYXNz"), want: ErrUnsigned, mention: "AWS4-HMAC-SHA256"},
		// The algorithm alone, nothing after it.
		{name: "algorithm only", change: setAuth("AWS4-HMAC-SHA256"), want: ErrUnsigned},
		// A truncated header must not pass for lack of a signature to compare.
		{name: "missing signature", change: setAuth("AWS4-HMAC-SHA256 " + scope + ", SignedHeaders=host;x-amz-date"), want: ErrUnsigned, mention: "Signature= is missing"},
		// Garbage after the algorithm.
		{name: "garbage", change: setAuth("AWS4-HMAC-SHA256 \x00\xff;;==,,"), want: ErrUnsigned},
		// An empty Signature= is missing, not an empty string to compare.
		{name: "empty signature", change: setAuth("AWS4-HMAC-SHA256 " + scope + ", SignedHeaders=host, Signature="), want: ErrUnsigned},
		// A part repeated could otherwise shadow the first one.
		{name: "duplicate part", change: setAuth("AWS4-HMAC-SHA256 " + scope + ", SignedHeaders=host, " + sig + ", " + sig), want: ErrUnsigned, mention: "twice"},
		// The credential scope must have all five parts.
		{name: "short credential", change: setAuth("AWS4-HMAC-SHA256 Credential=" + testKeyID + "/20260314/us-east-1, SignedHeaders=host, " + sig), want: ErrUnsigned, mention: "Credential"},
		// Unsorted names are not what any conforming client sends.
		{name: "unsorted signed headers", change: setAuth("AWS4-HMAC-SHA256 " + scope + ", SignedHeaders=x-amz-date;host, " + sig), want: ErrUnsigned, mention: "sorted"},
		// AWS requires host to be signed; so do we.
		{name: "host not signed", change: setAuth("AWS4-HMAC-SHA256 " + scope + ", SignedHeaders=x-amz-date, " + sig), want: ErrUnsigned, mention: "host"},
		// The signing time is part of what is signed; without it there is nothing to check.
		{name: "no x-amz-date", change: func(r *http.Request, _ *[]byte) { r.Header.Del("X-Amz-Date") }, want: ErrUnsigned, mention: "X-Amz-Date"},
		// A date in another format is as good as none.
		{name: "malformed x-amz-date", change: func(r *http.Request, _ *[]byte) { r.Header.Set("X-Amz-Date", "Sat, 14 Mar 2026 15:09:26 GMT") }, want: ErrUnsigned, mention: "X-Amz-Date"},
		// Only the configured key pair is accepted.
		{name: "wrong access key", signAs: func(s *signer) { s.keyID = "AKIAOTHERKEY00000001" }, want: ErrUnknownKey},
		// A server started without keys must not accept signatures made with an empty secret.
		{name: "server without key pair", signAs: func(s *signer) { s.keyID, s.secret = "", "" }, server: func(v *Verifier) { v.AccessKeyID, v.SecretAccessKey = "", "" }, want: ErrUnknownKey, mention: "no key pair"},
		// The right key id with the wrong secret.
		{name: "wrong secret", signAs: func(s *signer) { s.secret = "not-the-secret" }, want: ErrSignature, mention: "secret access key"},
		// One hex digit off.
		{name: "tampered signature", change: func(r *http.Request, _ *[]byte) {
			h := r.Header.Get("Authorization")
			digit := "0"
			if strings.HasSuffix(h, "0") {
				digit = "1"
			}
			r.Header.Set("Authorization", h[:len(h)-1]+digit)
		}, want: ErrSignature},
		// The body is covered by the signature through its hash.
		{name: "body changed", change: func(_ *http.Request, b *[]byte) { *b = []byte(`{"MaxRecords":100}`) }, want: ErrSignature},
		// With X-Amz-Content-Sha256 the changed body is caught before the signature, with its own message.
		{name: "body changed under content sha256", beforeSign: func(r *http.Request) {
			r.Header.Set("X-Amz-Content-Sha256", hexSHA256([]byte(describeEndpoints.body)))
		}, change: func(_ *http.Request, b *[]byte) { *b = []byte(`{}`) }, want: ErrSignature, mention: "X-Amz-Content-Sha256"},
		// UNSIGNED-PAYLOAD would leave the body unprotected.
		{name: "unsigned payload", beforeSign: func(r *http.Request) { r.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD") }, want: ErrSignature, mention: "X-Amz-Content-Sha256"},
		// A signed header changed in transit: another operation under the same signature.
		{name: "signed header changed", change: func(r *http.Request, _ *[]byte) {
			r.Header.Set("X-Amz-Target", "AmazonDMSv20160101.DeleteEndpoint")
		}, want: ErrSignature},
		// A signed header dropped in transit is named, so the operator can find the proxy that dropped it.
		{name: "signed header missing", change: func(r *http.Request, _ *[]byte) { r.Header.Del("X-Amz-Target") }, want: ErrSignature, mention: "x-amz-target"},
		// The host is signed too.
		{name: "host changed", change: func(r *http.Request, _ *[]byte) { r.Host = "evil.example.com" }, want: ErrSignature},
		// The method is signed.
		{name: "method changed", change: func(r *http.Request, _ *[]byte) { r.Method = http.MethodPut }, want: ErrSignature},
		// The path is signed.
		{name: "path changed", change: func(r *http.Request, _ *[]byte) { r.URL.Path = "/other" }, want: ErrSignature},
		// A query parameter added after signing.
		{name: "query added", change: func(r *http.Request, _ *[]byte) { r.URL.RawQuery = "Force=true" }, want: ErrSignature},
		// A query that does not parse is refused rather than partly signed.
		{name: "malformed query", change: func(r *http.Request, _ *[]byte) { r.URL.RawQuery = "a=%zz" }, want: ErrSignature, mention: "query"},
		// Signed 16 minutes before the server's clock: too old.
		{name: "16 minutes in the past", server: clock(16 * time.Minute), want: ErrExpired, mention: "clock"},
		// Signed 16 minutes after the server's clock: from the future.
		{name: "16 minutes in the future", server: clock(-16 * time.Minute), want: ErrExpired, mention: "clock"},
		// MaxSkew narrows the window.
		{name: "custom max skew", server: func(v *Verifier) { clock(2 * time.Minute)(v); v.MaxSkew = time.Minute }, want: ErrExpired},
		// A client configured for another region.
		{name: "wrong region", signAs: func(s *signer) { s.region = "eu-west-1" }, want: ErrScope, mention: "eu-west-1"},
		// A signature for another service.
		{name: "wrong service", signAs: func(s *signer) { s.service = "s3" }, want: ErrScope, mention: `"s3"`},
		// The scope's day must be X-Amz-Date's day.
		{name: "scope date not x-amz-date", change: func(r *http.Request, _ *[]byte) { r.Header.Set("X-Amz-Date", "20260315T000000Z") }, want: ErrScope, mention: "day"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := describeEndpoints.build(t)
			body := []byte(describeEndpoints.body)
			if tc.beforeSign != nil {
				tc.beforeSign(r)
			}
			s := serverKeys()
			if tc.signAs != nil {
				tc.signAs(&s)
			}
			s.sign(t, r, body)
			if tc.change != nil {
				tc.change(r, &body)
			}
			v := verifierAt(signedAt)
			if tc.server != nil {
				tc.server(v)
			}
			err := v.Verify(r, body)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
			checkMessage(t, err)
			if !strings.Contains(err.Error(), tc.mention) {
				t.Errorf("message %q does not mention %q", err, tc.mention)
			}
		})
	}
}

// FuzzVerify feeds arbitrary Authorization headers and bodies to a request
// whose seeds were signed with another secret, so nothing may verify.
func FuzzVerify(f *testing.F) {
	sentinels := []error{ErrUnsigned, ErrUnknownKey, ErrScope, ErrExpired, ErrSignature}
	f.Fuzz(func(t *testing.T, auth string, body []byte) {
		r, err := http.NewRequest(http.MethodPost, "https://"+testHost+"/", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		r.Header.Set("Content-Type", "application/x-amz-json-1.1")
		r.Header.Set("X-Amz-Target", "AmazonDMSv20160101.DescribeEndpoints")
		r.Header.Set("X-Amz-Date", signedAt.Format(dateLayout))
		r.Header.Set("Authorization", auth)
		err = verifierAt(signedAt).Verify(r, body)
		if err == nil {
			t.Fatalf("Verify accepted Authorization %q", auth)
		}
		n := 0
		for _, s := range sentinels {
			if errors.Is(err, s) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("error %v wraps %d sentinels, want 1", err, n)
		}
		if strings.Contains(err.Error(), testSecret) {
			t.Errorf("message contains the secret: %v", err)
		}
	})
}
