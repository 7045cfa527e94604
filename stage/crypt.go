// Package stage holds the dirty data of a mount until it is in the bucket:
// an encrypted local spool per file, a crash-safe journal of files waiting
// for upload, and the upload queue with its write-back window.
//
// Plaintext never lands on disk: spool chunks and journal records are
// sealed with AES-256-GCM under a key derived from the SSE-C key and the
// bucket (keys.Key.JournalKey, HKDF), so a restart with the same key can
// resume the uploads after a crash, and a reader of the disk learns
// nothing.
package stage

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
)

// sealer encrypts spool chunks and journal records. Nonces are random (96
// bits): safe for far more than the 2^32 messages one key may seal.
type sealer struct{ aead cipher.AEAD }

func newSealer(key []byte) (sealer, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return sealer{}, err
	}
	a, err := cipher.NewGCM(b)
	if err != nil {
		return sealer{}, err
	}
	return sealer{aead: a}, nil
}

// overhead is what sealing adds to a message: nonce and tag.
func (s sealer) overhead() int { return s.aead.NonceSize() + s.aead.Overhead() }

// seal appends nonce || ciphertext || tag of plain to dst. ad binds the
// message to its place (which file, which chunk), so chunks cannot be
// swapped between files or offsets unnoticed.
func (s sealer) seal(dst, plain, ad []byte) []byte {
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err)) // never fails on Linux
	}
	dst = append(dst, nonce...)
	return s.aead.Seal(dst, nonce, plain, ad)
}

var errSealed = errors.New("cannot decrypt: another key, or damaged")

// open decrypts a sealed message into dst.
func (s sealer) open(dst, sealed, ad []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < s.overhead() {
		return nil, errSealed
	}
	out, err := s.aead.Open(dst, sealed[:n], sealed[n:], ad)
	if err != nil {
		return nil, errSealed
	}
	return out, nil
}
