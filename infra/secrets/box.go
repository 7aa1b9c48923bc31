package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"fmt"
	"strings"
)

// sealedPrefix versions the sealed format, so a later change of cipher or
// key can tell old values from new ones.
const sealedPrefix = "v1:"

const keyHint = "SLUICE_MASTER_KEY must be 32 random bytes in base64; make one with `head -c 32 /dev/urandom | base64`"

// Box seals and opens endpoint passwords with AES-256-GCM.
type Box struct{ aead cipher.AEAD }

// NewBox takes the base64 text of SLUICE_MASTER_KEY (standard or URL
// alphabet, padded or not). Its errors say what is wrong with the key but
// never repeat it.
func NewBox(key string) (*Box, error) {
	// One decoder for all four spellings: map the URL alphabet onto the
	// standard one and drop the padding.
	text := strings.TrimRight(strings.TrimSpace(key), "=")
	text = strings.NewReplacer("-", "+", "_", "/").Replace(text)
	raw, err := base64.RawStdEncoding.DecodeString(text)
	switch {
	case text == "":
		return nil, fmt.Errorf("%w: it is empty; %s", ErrMasterKey, keyHint)
	case err != nil:
		return nil, fmt.Errorf("%w: it is not base64; %s", ErrMasterKey, keyHint)
	case len(raw) != 32:
		return nil, fmt.Errorf("%w: it decodes to %d bytes, not 32; %s", ErrMasterKey, len(raw), keyHint)
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMasterKey, err)
	}
	// The AEAD draws a fresh 96-bit nonce for every Seal and puts it in
	// front of the ciphertext, so no caller can reuse one.
	aead, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMasterKey, err)
	}
	return &Box{aead: aead}, nil
}

// Seal returns "v1:" + base64(nonce|ciphertext|tag). The plaintext is
// authenticated together with aad, the endpoint's ARN, so a sealed value
// copied to another endpoint does not open. The error is always nil today;
// it is kept so that a key held elsewhere (KMS) can fail.
func (b *Box) Seal(plaintext, aad string) (string, error) {
	out := b.aead.Seal(nil, nil, []byte(plaintext), []byte(aad))
	return sealedPrefix + base64.StdEncoding.EncodeToString(out), nil
}

// Open returns the plaintext of a value Seal returned for the same aad. Any
// failure (wrong key, wrong aad, tampering, malformed input) wraps ErrSealed.
func (b *Box) Open(sealed, aad string) (string, error) {
	text, ok := strings.CutPrefix(sealed, sealedPrefix)
	if !ok {
		return "", fmt.Errorf("%w: it does not start with %q, so this server did not seal it", ErrSealed, sealedPrefix)
	}
	raw, err := base64.StdEncoding.DecodeString(text)
	if err != nil || len(raw) < b.aead.Overhead() {
		return "", fmt.Errorf("%w: it is truncated or not base64", ErrSealed)
	}
	plain, err := b.aead.Open(nil, nil, raw, []byte(aad))
	if err != nil {
		return "", fmt.Errorf("%w: it was sealed with another master key or for another endpoint, or it was changed", ErrSealed)
	}
	return string(plain), nil
}
