package secrets

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

const (
	plaintext = "correct horse battery staple"
	arn       = "arn:aws:dms:us-east-1:000000000000:endpoint:SOURCE"
)

// key is all 0xff so that its standard and URL spellings differ ("/" vs "_").
var key = bytes.Repeat([]byte{0xff}, 32)

func newBox(t *testing.T, key []byte) *Box {
	t.Helper()
	b, err := NewBox(base64.StdEncoding.EncodeToString(key))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestNewBox(t *testing.T) {
	tests := []struct {
		name, key string
		wantErr   string // "" for a good key
	}{
		// Operators paste keys from different tools; all four spellings work.
		{"std padded", base64.StdEncoding.EncodeToString(key), ""},
		{"std unpadded", base64.RawStdEncoding.EncodeToString(key), ""},
		{"url padded", base64.URLEncoding.EncodeToString(key), ""},
		{"url unpadded", base64.RawURLEncoding.EncodeToString(key), ""},
		// A key read from a file usually ends with a newline.
		{"trailing newline", base64.StdEncoding.EncodeToString(key) + "\n", ""},
		// AES-128 and off-by-one lengths must not be accepted silently.
		{"16 bytes", base64.StdEncoding.EncodeToString(key[:16]), "decodes to 16 bytes"},
		{"31 bytes", base64.StdEncoding.EncodeToString(key[:31]), "decodes to 31 bytes"},
		{"33 bytes", base64.StdEncoding.EncodeToString(append(key, 1)), "decodes to 33 bytes"},
		// A passphrase is not a key.
		{"not base64", "my very secret passphrase!", "not base64"},
		{"empty", "", "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := NewBox(tt.key)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				// Every spelling must decode to the same key.
				sealed, _ := newBox(t, key).Seal(plaintext, arn)
				if got, err := b.Open(sealed, arn); err != nil || got != plaintext {
					t.Fatalf("Open = %q, %v", got, err)
				}
				return
			}
			if !errors.Is(err, ErrMasterKey) {
				t.Fatalf("err = %v, want ErrMasterKey", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.wantErr) || !strings.Contains(msg, "head -c 32 /dev/urandom | base64") {
				t.Errorf("message %q should say %q and how to make a key", msg, tt.wantErr)
			}
			if tt.key != "" && strings.Contains(msg, strings.TrimSpace(tt.key)) {
				t.Errorf("message %q repeats the key", msg)
			}
		})
	}
}

func TestBoxRoundTrip(t *testing.T) {
	b := newBox(t, key)
	for _, pt := range []string{plaintext, "", "p@ss:wörd\x00with nul"} {
		sealed, err := b.Seal(pt, arn)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(sealed, "v1:") {
			t.Errorf("Seal = %q, want the v1: prefix", sealed)
		}
		if got, err := b.Open(sealed, arn); err != nil || got != pt {
			t.Errorf("Open(Seal(%q)) = %q, %v", pt, got, err)
		}
	}
}

// Equal passwords must not give equal sealed values: that would tell a
// reader of Redis which endpoints share a password.
func TestSealFreshNonce(t *testing.T) {
	b := newBox(t, key)
	s1, _ := b.Seal(plaintext, arn)
	s2, _ := b.Seal(plaintext, arn)
	if s1 == s2 {
		t.Fatalf("two seals of the same value are both %q", s1)
	}
	if strings.Contains(s1, plaintext) {
		t.Fatalf("sealed value %q contains the plaintext", s1)
	}
}

func TestOpenRejects(t *testing.T) {
	b := newBox(t, key)
	sealed, _ := b.Seal(plaintext, arn)
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(sealed, "v1:"))
	if err != nil {
		t.Fatal(err)
	}
	// Flip a decoded byte, not a base64 character, whose low bits may be
	// padding that the decoder ignores.
	flip := func(i int) string {
		c := bytes.Clone(raw)
		c[i] ^= 1
		return "v1:" + base64.StdEncoding.EncodeToString(c)
	}
	otherKey := bytes.Repeat([]byte{0x01}, 32)
	tests := []struct {
		name   string
		box    *Box
		sealed string
		aad    string
	}{
		// The master key was replaced without resealing.
		{"wrong key", newBox(t, otherKey), sealed, arn},
		// A sealed password copied to another endpoint's record.
		{"wrong aad", b, sealed, arn + "X"},
		{"flipped nonce byte", b, flip(0), arn},
		{"flipped ciphertext byte", b, flip(12), arn},
		{"flipped tag byte", b, flip(len(raw) - 1), arn},
		{"truncated by one byte", b, "v1:" + base64.StdEncoding.EncodeToString(raw[:len(raw)-1]), arn},
		// Shorter than nonce and tag together: must not panic.
		{"truncated below overhead", b, "v1:" + base64.StdEncoding.EncodeToString(raw[:20]), arn},
		{"prefix only", b, "v1:", arn},
		{"not base64", b, "v1:***not base64***", arn},
		// A plaintext password stored before sealing existed.
		{"no prefix", b, plaintext, arn},
		{"unknown version", b, "v2:" + strings.TrimPrefix(sealed, "v1:"), arn},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.box.Open(tt.sealed, tt.aad)
			if !errors.Is(err, ErrSealed) {
				t.Fatalf("Open = %q, %v; want ErrSealed", got, err)
			}
			for _, secret := range []string{plaintext, base64.StdEncoding.EncodeToString(key), base64.StdEncoding.EncodeToString(otherKey)} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("message %q contains a plaintext or key", err)
				}
			}
		})
	}
}
