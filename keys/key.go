// Package keys holds the SSE-C key: how it is read from its sources, and the
// one type that carries it through the program without ever printing it.
package keys

import (
	"bytes"
	"crypto/hkdf"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// Size is the length of an SSE-C key: AES-256.
const Size = 32

// ErrBadKey reports key material that is not a 32-byte key. Its text never
// contains the material itself.
var ErrBadKey = errors.New("not a 32-byte key")

// Key is the SSE-C key. Its bytes live in a page locked against swap where
// the system allows it, and are wiped by Wipe. It formats as key(md5=...),
// so a stray %v in a log line cannot leak it.
type Key struct {
	b   []byte // Size bytes, mlocked when possible; nil after Wipe
	md5 string // base64 MD5 of the key, as sent in the key-MD5 header
}

// Parse accepts the forms the other SSE-C clients take: 32 raw characters
// (one trailing newline ignored, as written by `echo` or `pwgen 32 1 >file`),
// base64 of 32 bytes (44 characters; the 43 of mc's --enc-c without its
// padding; the URL alphabet too) or 64 hex digits. The lengths differ, so
// no input is read two ways. The input is wiped before returning.
func Parse(material []byte) (*Key, error) {
	defer wipe(material)
	m := material
	m = bytes.TrimSuffix(m, []byte("\n"))
	m = bytes.TrimSuffix(m, []byte("\r"))
	var encs []func(dst, src []byte) (int, error)
	switch len(m) {
	case Size:
		return newKey(m), nil
	case base64.StdEncoding.EncodedLen(Size):
		encs = append(encs, base64.StdEncoding.Decode, base64.URLEncoding.Decode)
	case base64.RawStdEncoding.EncodedLen(Size):
		encs = append(encs, base64.RawStdEncoding.Decode, base64.RawURLEncoding.Decode)
	case hex.EncodedLen(Size):
		encs = append(encs, func(dst, src []byte) (int, error) { return hex.Decode(dst, src) })
	}
	dec := make([]byte, 2*Size)
	defer wipe(dec)
	for _, decode := range encs {
		if n, err := decode(dec, m); err == nil && n == Size {
			return newKey(dec[:n]), nil
		}
	}
	return nil, fmt.Errorf("%w: got %d bytes; expected 32 characters, base64 of 32 bytes (43 or 44 characters) or 64 hex digits", ErrBadKey, len(m))
}

func newKey(raw []byte) *Key {
	b := make([]byte, Size)
	// Best effort: mlock fails without CAP_IPC_LOCK beyond RLIMIT_MEMLOCK,
	// which is rarely below one page; a failure is not worth refusing a mount.
	_ = unix.Mlock(b)
	copy(b, raw)
	sum := md5.Sum(b)
	return &Key{b: b, md5: base64.StdEncoding.EncodeToString(sum[:])}
}

// FromReader reads key material from r (a file or standard input).
func FromReader(r io.Reader) (*Key, error) {
	// Read at most a little more than the longest valid form, so that a
	// wrong file (an image, a log) is refused without reading it all.
	buf := make([]byte, maxInput)
	n, err := io.ReadFull(r, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		wipe(buf)
		return nil, err
	}
	if n == len(buf) {
		wipe(buf)
		return nil, fmt.Errorf("%w: input is longer than any key form", ErrBadKey)
	}
	return Parse(buf[:n])
}

// FromFile reads the key from path; "-" is standard input, where a
// terminal is asked for it with its echo off. A file readable by group or
// others is reported through warn, as ssh does for its keys.
func FromFile(path string, warn func(string)) (*Key, error) {
	if path == "-" {
		if IsTerminal(os.Stdin) {
			return Prompt(os.Stdin, os.Stderr, "SSE-C key (not shown as you type): ")
		}
		return FromReader(os.Stdin)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Mode().Perm()&0o077 != 0 && warn != nil {
		warn(fmt.Sprintf("key file %s is readable by others (mode %04o); chmod 600 it", path, st.Mode().Perm()))
	}
	k, err := FromReader(f)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	return k, nil
}

// FromEnv reads the key from the environment variable name and removes the
// variable, so that no child process inherits it.
func FromEnv(name string) (*Key, error) {
	v, ok := os.LookupEnv(name)
	if !ok {
		return nil, fmt.Errorf("key variable %s is not set", name)
	}
	os.Unsetenv(name)
	k, err := Parse([]byte(v))
	if err != nil {
		return nil, fmt.Errorf("key variable %s: %w", name, err)
	}
	return k, nil
}

// Bytes returns the key itself. Callers must not keep, print or copy it
// beyond handing it to the SSE-C encoder.
func (k *Key) Bytes() []byte { return k.b }

// MD5 is the base64 MD5 of the key, as the key-MD5 header carries it.
func (k *Key) MD5() string { return k.md5 }

// String never shows the key.
func (k *Key) String() string { return "key(md5=" + k.md5 + ")" }

// GoString keeps %#v from dumping the bytes.
func (k *Key) GoString() string { return k.String() }

// Format makes every fmt verb print the safe form.
func (k *Key) Format(f fmt.State, _ rune) { io.WriteString(f, k.String()) }

// JournalKey derives the AES-256 key of a mount's journal from the key,
// bound to scope (endpoint, bucket and prefix): two buckets under one key
// get unrelated journal keys, and the journal never holds the key itself.
// The derivations (this and MetadataKey) are the only uses of the key's
// bytes outside this package and the SSE-C headers.
func (k *Key) JournalKey(scope string) []byte { return k.derive("ssecfs journal v1", scope) }

// MetadataKey derives the AES-256 key of the metadata kept on disk between
// mounts (package metadisk), bound to scope like JournalKey and unrelated
// to it.
func (k *Key) MetadataKey(scope string) []byte { return k.derive("ssecfs metadata v1", scope) }

func (k *Key) derive(purpose, scope string) []byte {
	b, err := hkdf.Key(sha256.New, k.b, []byte(purpose), scope, 32)
	if err != nil {
		panic("keys: HKDF of a 32-byte key: " + err.Error()) // only for a length SHA-256 cannot give
	}
	return b
}

// Wipe overwrites the key in memory. The Key is unusable afterwards.
func (k *Key) Wipe() {
	if k == nil || k.b == nil {
		return
	}
	wipe(k.b)
	_ = unix.Munlock(k.b)
	k.b = nil
}

func wipe(b []byte) {
	clear(b)
	runtime.KeepAlive(b)
}

// ProtectProcess makes the process non-dumpable: no core file, and no
// ptrace or /proc/PID/mem reads by other processes of the same user.
func ProtectProcess() error {
	return unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
}
