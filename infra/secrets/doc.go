// Package secrets keeps endpoint passwords out of plaintext. A password given
// to the API enters Box.Seal and leaves as an opaque "v1:" string bound to its
// endpoint's ARN, which is what the store keeps; the runner opens it again
// with the same SLUICE_MASTER_KEY. An endpoint that names a
// SecretsManagerSecretId instead is resolved by Resolver into a DBSecret read
// from AWS Secrets Manager, so Sluice never holds that password at rest.
package secrets
