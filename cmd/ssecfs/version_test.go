package main

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// A build without make's -ldflags (go build, go install) reports the
// revision it was built from, not "dev" (-buildvcs=true: this machine
// sets GOFLAGS=-buildvcs=false; go builds with it by default).
func TestVersionOfAPlainBuildIsItsRevision(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the command")
	}
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skipf("not in a git checkout: %v", err)
	}
	// go stamps no revision in a linked worktree (.git is a file there).
	if dir, err := exec.Command("git", "rev-parse", "--git-dir").Output(); err == nil {
		if common, err := exec.Command("git", "rev-parse", "--git-common-dir").Output(); err == nil &&
			filepath.Clean(strings.TrimSpace(string(dir))) != filepath.Clean(strings.TrimSpace(string(common))) {
			t.Skip("a linked worktree: go build stamps no revision there")
		}
	}
	bin := filepath.Join(t.TempDir(), "ssecfs")
	if out, err := exec.Command("go", "build", "-buildvcs=true", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	// A pseudo-version (v0.0.0-DATE-REVISION[+dirty]) or the revision.
	want := regexp.MustCompile(`^ssecfs (v0\.0\.0-[0-9]{14}-)?` + string(head[:12]) + `([+-]dirty)?\n$`)
	if !want.Match(out) {
		t.Fatalf("version %q, want the revision %s", out, strings.TrimSpace(string(head)))
	}
}
