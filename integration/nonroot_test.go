//go:build integration

package integration

import (
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The test user is created by servers/install.sh.
const testUser = "ssecfs-test"

func TestOrdinaryUserMountsReadsAndUnmounts(t *testing.T) {
	s := loadServer(t, "minio")
	u, err := user.Lookup(testUser)
	if err != nil {
		t.Fatalf("user %s missing (servers/install.sh creates it): %v", testUser, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	b := s.bucket(t)
	src := filepath.Join(t.TempDir(), "doc.txt")
	os.WriteFile(src, []byte("for the user"), 0o644)
	s.aws(t, append([]string{"s3", "cp", src, "s3://" + b + "/docs/doc.txt"}, sse(secret)...)...)

	// The user's own folder, key and mountpoint, as in a home directory.
	home, err := os.MkdirTemp("", "ssecfs-home-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	mp, key, logf := filepath.Join(home, "bucket"), filepath.Join(home, "key"), filepath.Join(home, "ssecfs.log")
	os.Mkdir(mp, 0o700)
	os.WriteFile(key, []byte(secret), 0o600)
	for _, p := range []string{home, mp, key} {
		if err := os.Chown(p, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	as := func(args ...string) (string, error) {
		cmd := exec.Command("runuser", append([]string{"-u", testUser, "--", "env", "HOME=" + home,
			"AWS_ACCESS_KEY_ID=" + s.access, "AWS_SECRET_ACCESS_KEY=" + s.sec, "AWS_CA_BUNDLE=" + s.ca}, args...)...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := as(binary, "mount", "--endpoint", s.endpoint, "--key-file", key, "--log-file", logf, b, mp); err != nil {
		t.Fatalf("mount as %s: %v\n%s\n%s", testUser, err, out, readLog(logf))
	}
	pid := pidFromLog(t, logf)
	mounted := true
	t.Cleanup(func() {
		if mounted {
			as(binary, "umount", mp)
		}
	})
	if out, err := as("cat", filepath.Join(mp, "docs/doc.txt")); err != nil || out != "for the user" {
		t.Fatalf("cat as the user: %q %v", out, err)
	}
	if out, err := as("stat", "-c", "%U %a", filepath.Join(mp, "docs/doc.txt")); err != nil || strings.TrimSpace(out) != testUser+" 644" {
		t.Fatalf("the files must belong to the mounting user: %q %v", out, err)
	}
	if out, err := as(binary, "umount", mp); err != nil {
		t.Fatalf("umount as the user: %v\n%s", err, out)
	}
	mounted = false
	waitExit(t, pid)
	if isMounted(mp) {
		t.Fatal("still mounted")
	}
}
