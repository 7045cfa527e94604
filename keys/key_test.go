package keys

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const secret = "0123456789abcdefghijklmnopqrstuv" // 32 printable characters, as pwgen makes

func TestParseAcceptsTheFormsOtherClientsUse(t *testing.T) {
	raw := []byte(secret)
	binary := []byte("\xfb\xff" + secret[2:]) // '+' and '/' in base64; '-' and '_' in its URL form
	for name, c := range map[string]struct {
		in   string
		want []byte
	}{
		"raw":             {secret, raw},
		"raw with \\n":    {secret + "\n", raw},
		"raw with \\r\\n": {secret + "\r\n", raw},
		"base64":          {base64.StdEncoding.EncodeToString(binary), binary},
		"base64 with \\n": {base64.StdEncoding.EncodeToString(raw) + "\n", raw},
		"base64 url":      {base64.URLEncoding.EncodeToString(binary), binary},
		"mc --enc-c":      {base64.RawStdEncoding.EncodeToString(binary), binary},
		"mc --enc-c url":  {base64.RawURLEncoding.EncodeToString(binary), binary},
		"hex":             {hex.EncodeToString(binary), binary},
		"hex with \\n":    {hex.EncodeToString(raw) + "\n", raw},
	} {
		k, err := Parse([]byte(c.in))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !bytes.Equal(k.Bytes(), c.want) {
			t.Fatalf("%s: wrong key bytes", name)
		}
	}
}

func TestParseRefusesWrongLengthsWithoutEchoingTheInput(t *testing.T) {
	for _, in := range []string{"", secret[:31], secret + "x", strings.Repeat("!", 44), strings.Repeat("!", 43), strings.Repeat("g", 64)} {
		_, err := Parse([]byte(in))
		if !errors.Is(err, ErrBadKey) {
			t.Fatalf("%q: got %v, want ErrBadKey", in, err)
		}
		if in != "" && strings.Contains(err.Error(), in[:10]) {
			t.Fatalf("error text shows the key material: %v", err)
		}
	}
}

func TestKeyNeverFormatsItsBytes(t *testing.T) {
	k, err := Parse([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{fmt.Sprint(k), fmt.Sprintf("%v %+v %#v %s %q %x", k, k, k, k, k, k), k.String()} {
		if strings.Contains(s, secret) || strings.Contains(s, fmt.Sprintf("%x", secret)) ||
			strings.Contains(s, base64.StdEncoding.EncodeToString([]byte(secret))) {
			t.Fatalf("formatted key shows the key: %s", s)
		}
		if !strings.Contains(s, "key(md5=") {
			t.Fatalf("formatted key lacks the safe form: %s", s)
		}
	}
}

func TestWipeClearsTheKey(t *testing.T) {
	k, _ := Parse([]byte(secret))
	b := k.Bytes()
	k.Wipe()
	for _, c := range b {
		if c != 0 {
			t.Fatal("key bytes survive Wipe")
		}
	}
}

func TestFromFileWarnsWhenOthersCanRead(t *testing.T) {
	p := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(p, []byte(secret+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var warned string
	if _, err := FromFile(p, func(s string) { warned = s }); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(warned, "readable by others") {
		t.Fatalf("no warning for a 0644 key file, got %q", warned)
	}
	os.Chmod(p, 0o600)
	warned = ""
	if _, err := FromFile(p, func(s string) { warned = s }); err != nil || warned != "" {
		t.Fatalf("0600 key file: err %v, warning %q", err, warned)
	}
}

func TestFromEnvRemovesTheVariable(t *testing.T) {
	t.Setenv("SSECFS_TEST_KEY", secret)
	if _, err := FromEnv("SSECFS_TEST_KEY"); err != nil {
		t.Fatal(err)
	}
	if _, ok := os.LookupEnv("SSECFS_TEST_KEY"); ok {
		t.Fatal("the key variable is still in the environment, where children would inherit it")
	}
}

// --key-file - reads the key from standard input.
func TestKeyFileDashReadsStandardInput(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stdin
	os.Stdin = r
	t.Cleanup(func() { os.Stdin = old; r.Close() })
	if _, err := w.Write([]byte("0123456789abcdefghijklmnopqrstuv\n")); err != nil {
		t.Fatal(err)
	}
	w.Close()
	k, err := FromFile("-", nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(k.Bytes()) != "0123456789abcdefghijklmnopqrstuv" {
		t.Fatal("standard input's key was not read")
	}
}

// The journal key is HKDF-SHA256 of the key, bound to the endpoint, bucket
// and prefix. Its value is fixed: a journal a crash left must open with the
// next version's derivation.
func TestJournalKeyIsBoundToItsScopeAndStable(t *testing.T) {
	k, err := Parse([]byte("0123456789abcdefghijklmnopqrstuv"))
	if err != nil {
		t.Fatal(err)
	}
	scope := "https://127.0.0.1:7480\nbucket\nprefix/"
	if got := hex.EncodeToString(k.JournalKey(scope)); got != "19cf3b2139800ffbbad81f04c8261eb26d34bb22037c1c97c784f5b1f5864a0d" {
		t.Fatalf("journal key changed: %s", got)
	}
	if bytes.Equal(k.JournalKey(scope), k.JournalKey(scope+"x")) || bytes.Equal(k.JournalKey(scope), k.Bytes()) {
		t.Fatal("the journal key is not bound to its scope, or is the key itself")
	}
}

// The metadata key is derived like the journal key but for another purpose:
// knowing one tells nothing of the other.
func TestMetadataKeyIsNotTheJournalKey(t *testing.T) {
	k, err := Parse([]byte("0123456789abcdefghijklmnopqrstuv"))
	if err != nil {
		t.Fatal(err)
	}
	scope := "https://127.0.0.1:7480\nbucket\nprefix/"
	m := k.MetadataKey(scope)
	if len(m) != 32 || bytes.Equal(m, k.JournalKey(scope)) || bytes.Equal(m, k.MetadataKey(scope+"x")) || bytes.Equal(m, k.Bytes()) {
		t.Fatal("the metadata key is the journal key, the key itself, or not bound to its scope")
	}
	if !bytes.Equal(m, k.MetadataKey(scope)) {
		t.Fatal("the metadata key is not stable")
	}
}
