// Package secrets keeps endpoint passwords out of plaintext: Box seals them
// with the master key (SLUICE_MASTER_KEY) before they are stored, and
// Resolver reads database credentials from AWS Secrets Manager when an
// endpoint names a secret instead.
package secrets

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// Sentinel errors.
var (
	ErrMasterKey = errors.New("the master key is not valid")
	ErrSealed    = errors.New("the sealed value cannot be opened")
	ErrSecret    = errors.New("the secret cannot be used")
)

// Box seals and opens endpoint passwords with AES-256-GCM.
type Box struct{ aead cipher.AEAD }

// NewBox takes the base64 text of the master key: 32 bytes.
func NewBox(key string) (*Box, error) {
	var raw []byte
	var err error
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if raw, err = enc.DecodeString(strings.TrimSpace(key)); err == nil {
			break
		}
	}
	if err != nil || len(raw) != 32 {
		return nil, fmt.Errorf("%w: it must be 32 random bytes in base64; make one with `head -c 32 /dev/urandom | base64`", ErrMasterKey)
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Box{aead: aead}, nil
}

// Seal encrypts plaintext bound to aad (the endpoint's ARN, so a sealed
// value cannot be moved to another endpoint).
func (b *Box) Seal(plaintext, aad string) (string, error) {
	nonce := make([]byte, b.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	out := b.aead.Seal(nonce, nonce, []byte(plaintext), []byte(aad))
	return "v1:" + base64.StdEncoding.EncodeToString(out), nil
}

// Open decrypts what Seal returned for the same aad.
func (b *Box) Open(sealed, aad string) (string, error) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(sealed, "v1:"))
	if err != nil || !strings.HasPrefix(sealed, "v1:") || len(raw) < b.aead.NonceSize() {
		return "", fmt.Errorf("%w: it is not a value this server sealed", ErrSealed)
	}
	n := b.aead.NonceSize()
	pt, err := b.aead.Open(nil, raw[:n], raw[n:], []byte(aad))
	if err != nil {
		return "", fmt.Errorf("%w: wrong master key, or the value was changed", ErrSealed)
	}
	return string(pt), nil
}

// DBSecret is a database secret as RDS and DMS keep them in Secrets Manager.
type DBSecret struct {
	Username, Password, Host string
	Port                     int
	DBName                   string
}

// String hides the password.
func (s DBSecret) String() string {
	return fmt.Sprintf("{%s@%s:%d/%s password:[hidden]}", s.Username, s.Host, s.Port, s.DBName)
}

// Resolver reads secrets from AWS Secrets Manager.
type Resolver struct{ client *secretsmanager.Client }

// NewResolver builds the client from the standard AWS environment (region,
// credentials, AWS_ENDPOINT_URL_SECRETS_MANAGER).
func NewResolver(ctx context.Context) (*Resolver, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("load the AWS configuration for Secrets Manager: %w", err)
	}
	return &Resolver{client: secretsmanager.NewFromConfig(cfg)}, nil
}

// Resolve fetches and parses a database secret.
func (r *Resolver) Resolve(ctx context.Context, secretID string) (DBSecret, error) {
	out, err := r.client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(secretID)})
	if err != nil {
		return DBSecret{}, fmt.Errorf("%w: read secret %s from Secrets Manager: %v", ErrSecret, secretID, err)
	}
	var doc struct {
		Username, Password, Host, DBName string
		Port                             json.RawMessage
	}
	if json.Unmarshal([]byte(aws.ToString(out.SecretString)), &doc) != nil {
		return DBSecret{}, fmt.Errorf("%w: secret %s is not JSON with username, password, host and port", ErrSecret, secretID)
	}
	if doc.Password == "" {
		return DBSecret{}, fmt.Errorf("%w: secret %s has no password key", ErrSecret, secretID)
	}
	s := DBSecret{Username: doc.Username, Password: doc.Password, Host: doc.Host, DBName: doc.DBName}
	if p := strings.Trim(string(doc.Port), `"`); p != "" && p != "null" {
		if s.Port, err = strconv.Atoi(p); err != nil {
			return DBSecret{}, fmt.Errorf("%w: secret %s has a port that is not a number", ErrSecret, secretID)
		}
	}
	return s, nil
}
