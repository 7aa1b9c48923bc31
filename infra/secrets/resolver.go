package secrets

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/smithy-go"
)

// secretFormat is shown when a secret has the wrong shape, so the operator
// can fix it without looking up what RDS writes.
const secretFormat = `{"username":"...","password":"...","host":"...","port":5432,"dbname":"..."}`

// Resolver reads secrets from AWS Secrets Manager.
type Resolver struct{ client *secretsmanager.Client }

// NewResolver builds the client with the SDK's default configuration, so
// AWS_REGION, the usual credential sources, AWS_ENDPOINT_URL and
// AWS_ENDPOINT_URL_SECRETS_MANAGER apply. It does not call AWS: a server
// whose endpoints name no secret needs no AWS setup.
func NewResolver(ctx context.Context) (*Resolver, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("load the AWS configuration for Secrets Manager: %w", err)
	}
	return &Resolver{client: secretsmanager.NewFromConfig(cfg)}, nil
}

// Resolve reads the SecretString of secretID (an ARN or a name) and parses
// it as JSON with the keys username, password, host, port (a number or a
// string) and optionally dbname; other keys such as engine are ignored.
// Errors wrap ErrSecret, name the secret and say what to fix; they never
// include the secret's contents.
func (r *Resolver) Resolve(ctx context.Context, secretID string) (DBSecret, error) {
	region := r.client.Options().Region
	if region == "" {
		return DBSecret{}, fmt.Errorf("%w: cannot read secret %q: no AWS region is configured; set AWS_REGION", ErrSecret, secretID)
	}
	out, err := r.client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(secretID)})
	if err != nil {
		return DBSecret{}, explain(secretID, region, err)
	}
	if out.SecretString == nil {
		return DBSecret{}, fmt.Errorf("%w: secret %q holds binary data; store the credentials as a JSON secret string: %s", ErrSecret, secretID, secretFormat)
	}
	return parse(secretID, *out.SecretString)
}

// parse never wraps a JSON error: their messages can quote the input.
func parse(secretID, text string) (DBSecret, error) {
	var doc struct {
		Username string          `json:"username"`
		Password string          `json:"password"`
		Host     string          `json:"host"`
		Port     json.RawMessage `json:"port"`
		DBName   string          `json:"dbname"`
	}
	if json.Unmarshal([]byte(text), &doc) != nil {
		return DBSecret{}, fmt.Errorf("%w: secret %q is not a JSON object in the format RDS uses: %s", ErrSecret, secretID, secretFormat)
	}
	if doc.Password == "" {
		return DBSecret{}, fmt.Errorf("%w: secret %q has no \"password\" key; add it: %s", ErrSecret, secretID, secretFormat)
	}
	s := DBSecret{Username: doc.Username, Password: doc.Password, Host: doc.Host, DBName: doc.DBName}
	if len(doc.Port) > 0 && string(doc.Port) != "null" {
		port, ok := parsePort(doc.Port)
		if !ok {
			return DBSecret{}, fmt.Errorf("%w: secret %q has a \"port\" that is not a whole number from 1 to 65535", ErrSecret, secretID)
		}
		s.Port = port
	}
	return s, nil
}

// parsePort takes 5432 or "5432": RDS writes a number, people often write a
// string, and json.Number accepts both.
func parsePort(raw json.RawMessage) (int, bool) {
	var n json.Number
	if json.Unmarshal(raw, &n) != nil {
		return 0, false
	}
	port, err := strconv.Atoi(n.String())
	return port, err == nil && port >= 1 && port <= 65535
}

// explain turns a GetSecretValue failure into what the operator must fix.
func explain(secretID, region string, err error) error {
	var api smithy.APIError
	code := ""
	if errors.As(err, &api) {
		code = api.ErrorCode()
	}
	switch code {
	case "ResourceNotFoundException":
		return fmt.Errorf("%w: secret %q does not exist in region %s; check the endpoint's SecretsManagerSecretId and AWS_REGION: %w", ErrSecret, secretID, region, err)
	case "AccessDeniedException":
		return fmt.Errorf("%w: this server's AWS identity may not read secret %q; grant it secretsmanager:GetSecretValue on the secret: %w", ErrSecret, secretID, err)
	case "DecryptionFailure":
		return fmt.Errorf("%w: secret %q cannot be decrypted; grant this server's AWS identity kms:Decrypt on the secret's KMS key: %w", ErrSecret, secretID, err)
	case "UnrecognizedClientException", "InvalidSignatureException", "ExpiredTokenException":
		return fmt.Errorf("%w: AWS rejected this server's credentials while reading secret %q; check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY or AWS_PROFILE: %w", ErrSecret, secretID, err)
	}
	return fmt.Errorf("%w: read secret %q from Secrets Manager in region %s: %w", ErrSecret, secretID, region, err)
}

// Text reads the SecretString of secretID as it is (a key, a password).
func (r *Resolver) Text(ctx context.Context, secretID string) (string, error) {
	region := r.client.Options().Region
	if region == "" {
		return "", fmt.Errorf("%w: cannot read secret %q: no AWS region is configured; set AWS_REGION", ErrSecret, secretID)
	}
	out, err := r.client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(secretID)})
	if err != nil {
		return "", explain(secretID, region, err)
	}
	if out.SecretString == nil {
		return "", fmt.Errorf("%w: secret %q holds binary data; store the value as a secret string", ErrSecret, secretID)
	}
	return *out.SecretString, nil
}

// LoadEnv fills each environment variable in names that is unset from the
// secret its <name>_SECRET_ARN variable names, as a deployment passes the
// master key and the API's secret key to functions (template.yaml): the
// value never appears in the function's configuration.
func LoadEnv(ctx context.Context, names ...string) error {
	var r *Resolver
	for _, name := range names {
		arn := os.Getenv(name + "_SECRET_ARN")
		if os.Getenv(name) != "" || arn == "" {
			continue
		}
		if r == nil {
			var err error
			if r, err = NewResolver(ctx); err != nil {
				return err
			}
		}
		v, err := r.Text(ctx, arn)
		if err != nil {
			return fmt.Errorf("%s_SECRET_ARN: %w", name, err)
		}
		if err := os.Setenv(name, strings.TrimSpace(v)); err != nil {
			return err
		}
	}
	return nil
}

// FromEnv is what opens endpoint passwords for a process that runs
// replications: the box of SLUICE_MASTER_KEY (nil when it is unset) and a
// Secrets Manager resolver.
func FromEnv(ctx context.Context) (*Box, *Resolver, error) {
	var box *Box
	if k := os.Getenv("SLUICE_MASTER_KEY"); k != "" {
		var err error
		if box, err = NewBox(k); err != nil {
			return nil, nil, fmt.Errorf("SLUICE_MASTER_KEY: %w", err)
		}
	}
	r, err := NewResolver(ctx)
	if err != nil {
		return nil, nil, err
	}
	return box, r, nil
}
