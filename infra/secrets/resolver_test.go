package secrets

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/smithy-go"

	"github.com/sluicedb/sluice/infra/mototest"
)

const password = "s3cr3t-pa55"

func TestResolve(t *testing.T) {
	mototest.Start(t)
	ctx := context.Background()
	r, err := NewResolver(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Names are unique per run so that -count=2 can reuse the server.
	prefix := fmt.Sprintf("sluice-test-%d/", time.Now().UnixNano())
	tests := []struct {
		name   string
		value  string // "" creates no secret
		byARN  bool
		want   DBSecret
		errHas string // "" for success
	}{
		// The shape RDS writes for a managed master password.
		{name: "rds", value: `{"username":"app","password":"` + password + `","engine":"postgres","host":"db.local","port":5432,"dbname":"shop"}`,
			want: DBSecret{Username: "app", Password: password, Host: "db.local", Port: 5432, DBName: "shop"}},
		// DMS takes SecretsManagerSecretId as a full ARN too.
		{name: "by-arn", byARN: true, value: `{"username":"app","password":"` + password + `","host":"db.local","port":5432}`,
			want: DBSecret{Username: "app", Password: password, Host: "db.local", Port: 5432}},
		// Hand-written secrets often quote the port.
		{name: "port-string", value: `{"username":"app","password":"` + password + `","host":"db.local","port":"6543"}`,
			want: DBSecret{Username: "app", Password: password, Host: "db.local", Port: 6543}},
		// A bare password stored as the secret: the error must not echo it.
		{name: "not-json", value: password, errHas: "not a JSON object"},
		{name: "no-password", value: `{"username":"app","host":"db.local","port":5432}`, errHas: `no "password" key`},
		{name: "missing", errHas: "does not exist in region us-east-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := prefix + tt.name
			if tt.value != "" {
				out, err := r.client.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(id), SecretString: aws.String(tt.value)})
				if err != nil {
					t.Fatalf("create secret: %v", err)
				}
				if tt.byARN {
					id = aws.ToString(out.ARN)
				}
			}
			got, err := r.Resolve(ctx, id)
			if tt.errHas == "" {
				if err != nil || got != tt.want {
					t.Fatalf("Resolve = %v, %v; want %v", got, err, tt.want)
				}
				return
			}
			if !errors.Is(err, ErrSecret) {
				t.Fatalf("Resolve = %v, %v; want ErrSecret", got, err)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.errHas) || !strings.Contains(msg, id) {
				t.Errorf("message %q should name the secret and say %q", msg, tt.errHas)
			}
			if strings.Contains(msg, password) {
				t.Errorf("message %q contains the secret's contents", msg)
			}
		})
	}
}

// Parsing is pure, so its edge cases need no server.
func TestParse(t *testing.T) {
	const pw = `"password":"` + password + `"`
	tests := []struct {
		name, text string
		wantPort   int
		errHas     string
	}{
		// RDS omits the port for some engines; the endpoint's own port applies.
		{"no port", `{` + pw + `}`, 0, ""},
		{"null port", `{` + pw + `,"port":null}`, 0, ""},
		{"capitalised keys", `{"Password":"` + password + `","Port":5432}`, 5432, ""},
		{"fractional port", `{` + pw + `,"port":5432.5}`, 0, "port"},
		{"word port", `{` + pw + `,"port":"postgres"}`, 0, "port"},
		{"port 0", `{` + pw + `,"port":0}`, 0, "port"},
		{"port too big", `{` + pw + `,"port":"70000"}`, 0, "port"},
		{"empty password", `{"password":""}`, 0, "password"},
		// Valid JSON, but a string rather than an object.
		{"json string", `"` + password + `"`, 0, "not a JSON object"},
		{"password not a string", `{"password":12345}`, 0, "not a JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parse("id", tt.text)
			if tt.errHas == "" {
				if err != nil || got.Port != tt.wantPort || got.Password != password {
					t.Fatalf("parse = %#v (password %q), %v", got, got.Password, err)
				}
				return
			}
			if !errors.Is(err, ErrSecret) || !strings.Contains(err.Error(), tt.errHas) {
				t.Fatalf("parse = %v, %v; want ErrSecret saying %q", got, err, tt.errHas)
			}
			if strings.Contains(err.Error(), password) || strings.Contains(err.Error(), "postgres") {
				t.Errorf("message %q contains the secret's contents", err)
			}
		})
	}
}

// moto grants every call, so refusals from real AWS are checked here.
func TestExplain(t *testing.T) {
	tests := []struct{ code, want string }{
		{"ResourceNotFoundException", "does not exist"},
		{"AccessDeniedException", "secretsmanager:GetSecretValue"},
		{"DecryptionFailure", "kms:Decrypt"},
		{"UnrecognizedClientException", "credentials"},
		{"InternalServiceError", "read secret"},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			api := &smithy.GenericAPIError{Code: tt.code, Message: "refused"}
			err := explain("my-secret", "eu-west-1", fmt.Errorf("operation error: %w", api))
			msg := err.Error()
			if !errors.Is(err, ErrSecret) || !errors.Is(err, api) {
				t.Errorf("%v should wrap ErrSecret and the AWS error", err)
			}
			if !strings.Contains(msg, tt.want) || !strings.Contains(msg, `"my-secret"`) {
				t.Errorf("message %q should name the secret and say %q", msg, tt.want)
			}
		})
	}
}

func TestDBSecretRedacts(t *testing.T) {
	s := DBSecret{Username: "app", Password: password, Host: "db.local", Port: 5432, DBName: "shop"}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("resolved", "secret", s)
	outputs := map[string]string{
		"%v":      fmt.Sprintf("%v", s),
		"%+v":     fmt.Sprintf("%+v", s),
		"%#v":     fmt.Sprintf("%#v", s),
		"%s":      fmt.Sprintf("%s", s), //lint:ignore S1025 the %s verb itself is under test
		"pointer": fmt.Sprintf("%v", &s),
		// fmt calls String on fields of a struct being printed.
		"nested": fmt.Sprintf("%+v", struct{ S DBSecret }{s}),
		"slog":   logged.String(),
	}
	for name, out := range outputs {
		if strings.Contains(out, password) || !strings.Contains(out, "db.local") {
			t.Errorf("%s: %q should show the host and hide the password", name, out)
		}
	}
}

// TestLoadEnv: a variable left unset is read from the secret its
// _SECRET_ARN names; one that is set wins; a missing secret is an error
// that names the variable.
func TestLoadEnv(t *testing.T) {
	mototest.Start(t)
	ctx := context.Background()
	r, err := NewResolver(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out, err := r.client.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name: aws.String(fmt.Sprintf("sluice-test-%d/master", time.Now().UnixNano())), SecretString: aws.String("key-from-secrets-manager\n"),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("SLUICE_TEST_A", "")
	t.Setenv("SLUICE_TEST_A_SECRET_ARN", aws.ToString(out.ARN))
	t.Setenv("SLUICE_TEST_B", "given")
	t.Setenv("SLUICE_TEST_B_SECRET_ARN", aws.ToString(out.ARN))
	if err := LoadEnv(ctx, "SLUICE_TEST_A", "SLUICE_TEST_B", "SLUICE_TEST_C"); err != nil {
		t.Fatal(err)
	}
	if a, b := os.Getenv("SLUICE_TEST_A"), os.Getenv("SLUICE_TEST_B"); a != "key-from-secrets-manager" || b != "given" {
		t.Fatalf("A=%q B=%q, want the secret's value and the given one", a, b)
	}
	t.Setenv("SLUICE_TEST_A", "")
	t.Setenv("SLUICE_TEST_A_SECRET_ARN", "arn:aws:secretsmanager:us-east-1:123456789012:secret:absent-AbCdEf")
	if err := LoadEnv(ctx, "SLUICE_TEST_A"); err == nil || !strings.Contains(err.Error(), "SLUICE_TEST_A_SECRET_ARN") {
		t.Fatalf("a missing secret: %v, want an error naming the variable", err)
	}
}
