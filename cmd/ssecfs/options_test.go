package main

import (
	"os"
	"path/filepath"
	"testing"
)

// A systemd unit's credential ssecfs-key is the key when no other source
// is given, and only then.
func TestASystemdCredentialIsTheKeyWhenNoneIsGiven(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("CREDENTIALS_DIRECTORY", dir)
	var k keySource
	if err := k.check(); err == nil {
		t.Fatal("no credential, no key option: accepted")
	}
	os.WriteFile(filepath.Join(dir, "ssecfs-key"), []byte("0123456789abcdefghijklmnopqrstuv\n"), 0o400)
	if err := k.check(); err != nil {
		t.Fatal(err)
	}
	key, err := k.read()
	if err != nil || string(key.Bytes()) != "0123456789abcdefghijklmnopqrstuv" {
		t.Fatalf("key from the credential: %v", err)
	}
	other := keySource{keyEnv: "SOME_VAR"}
	if err := other.check(); err != nil || other.keyFile != "" {
		t.Fatalf("a key option given beside a credential: %v, key file %q", err, other.keyFile)
	}
}
