//go:build integration

package integration

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// quickstart is the README's quickstart block, as a user pastes it.
func quickstart(t *testing.T) string {
	t.Helper()
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "<!-- quickstart: begin")
	block, _, ok2 := strings.Cut(rest, "<!-- quickstart: end -->")
	_, code, ok3 := strings.Cut(block, "```sh\n")
	code, _, ok4 := strings.Cut(code, "```")
	if !ok || !ok2 || !ok3 || !ok4 {
		t.Fatal("the README has no quickstart block between its markers")
	}
	return code
}

// The README's quickstart runs as written against the local RGW and
// Barbican, with endpoint and bucket set as it asks, in a fresh home; what
// it copied is in the bucket, encrypted with the key Barbican holds.
func TestTheReadmeQuickstartWorksAsWritten(t *testing.T) {
	s := loadServer(t, "rgw")
	b := s.bucket(t)
	home := t.TempDir()
	docs := filepath.Join(home, "Documents")
	os.MkdirAll(filepath.Join(docs, "taxes"), 0o755)
	os.WriteFile(filepath.Join(docs, "letter.txt"), []byte("dear bank"), 0o644)
	os.WriteFile(filepath.Join(docs, "taxes", "2026.pdf"), random(t, 300<<10), 0o644)
	// The user's shell: ssecfs on PATH (this build), their OpenStack and
	// S3 credentials, endpoint and bucket set.
	// (Later entries win: the test's own HOME and PATH are overridden.)
	env := append(s.withOS(openstackEnv(t, "env")), "HOME="+home,
		"PATH="+filepath.Dir(binary)+":/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8",
		"endpoint="+s.endpoint, "bucket="+b)
	script := "set -euo pipefail\n" + quickstart(t) + "\necho \"href=$secret_href\"\n"
	cmd := exec.Command("bash", "-c", script)
	cmd.Env, cmd.Dir = env, home
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the quickstart failed: %v\n%s", err, out)
	}
	if !bytes.Contains(out, []byte("letter.txt")) {
		t.Fatalf("ls -l of the copy shows no letter.txt:\n%s", out)
	}
	keys := s.keys(t, b)
	for _, k := range []string{"Documents/letter.txt", "Documents/taxes/2026.pdf"} {
		if !slices.Contains(keys, k) {
			t.Fatalf("%s not in the bucket after ssecfs umount: %v", k, keys)
		}
	}
	// Encrypted with the key in Barbican: aws reads it with the payload.
	_, href, _ := strings.Cut(strings.TrimSpace(string(out[bytes.LastIndex(out, []byte("href=")):])), "href=")
	payload := openstackCLI(t, openstackEnv(t, "env"), "secret", "get", href, "-p", "-c", "Payload", "-f", "value")
	down := filepath.Join(t.TempDir(), "letter.txt")
	s.aws(t, append([]string{"s3", "cp", "s3://" + b + "/Documents/letter.txt", down}, sse(payload)...)...)
	if got, _ := os.ReadFile(down); string(got) != "dear bank" {
		t.Fatalf("aws with Barbican's payload read %q", got)
	}
	s.assertAllEncrypted(t, b)
}
