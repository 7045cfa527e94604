//go:build integration

package integration

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// These tests run ssecfs as installed by make install (make test does it
// first): mount(8) looks for fuse.ssecfs on its own PATH and for
// mount.ssecfs in /sbin, not in the test's build.
const installed = "/usr/local/bin/ssecfs"

func needInstalled(t *testing.T) {
	t.Helper()
	for _, p := range []string{installed, "/sbin/mount.ssecfs"} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s is not installed: run make install (make test does): %v", p, err)
		}
	}
}

// fstabMu serialises the tests that edit /etc/fstab.
var fstabMu sync.Mutex

// addFstab appends line to /etc/fstab and takes it out when the test ends,
// failed or not.
func addFstab(t *testing.T, line string) {
	t.Helper()
	fstabMu.Lock()
	before, err := os.ReadFile("/etc/fstab")
	if err != nil && !os.IsNotExist(err) {
		fstabMu.Unlock()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		defer fstabMu.Unlock()
		if err := os.WriteFile("/etc/fstab", before, 0o644); err != nil {
			t.Errorf("restoring /etc/fstab: %v", err)
		}
	})
	if err := os.WriteFile("/etc/fstab", append(bytes.Clone(before), []byte(line+"\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
}

// daemonOf finds the pid of the daemon serving mp in the log at path.
func daemonOf(t *testing.T, path, mp string) int {
	t.Helper()
	re := regexp.MustCompile(`msg=mounted .*pid=(\d+) .*mountpoint=` + regexp.QuoteMeta(mp) + `( |$)`)
	pid := 0
	for _, l := range strings.Split(readLog(path), "\n") {
		if m := re.FindStringSubmatch(l); m != nil {
			pid, _ = strconv.Atoi(m[1])
		}
	}
	if pid == 0 {
		t.Fatalf("no mounted line for %s in %s", mp, path)
	}
	return pid
}

// findmnt returns the mount's type and options as the kernel has them.
func findmnt(t *testing.T, mp string) string {
	t.Helper()
	out, err := exec.Command("findmnt", "-no", "FSTYPE,OPTIONS", mp).CombinedOutput()
	if err != nil {
		t.Fatalf("findmnt %s: %v: %s", mp, err, out)
	}
	return strings.TrimSpace(string(out))
}

func TestMountTypeFuseSsecfsTakesItsOptionsAsDashO(t *testing.T) {
	needInstalled(t)
	s := loadServer(t, "rgw")
	u, err := user.Lookup(testUser)
	if err != nil {
		t.Fatal(err)
	}
	b, mp, logf := s.bucket(t), t.TempDir(), filepath.Join(t.TempDir(), "ssecfs.log")
	opts := strings.Join([]string{"endpoint=" + s.endpoint, "ca_file=" + s.ca, "key_file=" + keyFile(t, secret),
		"log_file=" + logf, "write_back=0", "noexec", "nosuid", "uid=" + testUser, "relatime", "x-systemd.automount"}, ",")
	cmd := exec.Command("mount", "-t", "fuse.ssecfs", "s3://"+b, mp, "-o", opts)
	cmd.Env = s.env()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mount -t fuse.ssecfs: %v: %s\n%s", err, out, readLog(logf))
	}
	pid := daemonOf(t, logf, mp)
	t.Cleanup(func() {
		exec.Command("umount", mp).Run()
		waitExit(t, pid)
	})
	got := findmnt(t, mp)
	for _, want := range []string{"fuse.ssecfs", "nosuid", "nodev", "noexec"} {
		if !strings.Contains(got, want) {
			t.Errorf("findmnt %s: %q, want %s", mp, got, want)
		}
	}
	// write_back=0: in the bucket once close returns.
	if err := os.WriteFile(filepath.Join(mp, "f"), []byte("through fstab"), 0o644); err != nil {
		t.Fatal(err)
	}
	if keys := s.keys(t, b); !slices.Contains(keys, "f") {
		t.Fatalf("write_back=0 did not upload at close: %v", keys)
	}
	if out, _ := exec.Command("stat", "-c", "%u", filepath.Join(mp, "f")).Output(); strings.TrimSpace(string(out)) != u.Uid {
		t.Errorf("uid=%s: files show owner %s", testUser, out)
	}
	if out, err := exec.Command("umount", mp).CombinedOutput(); err != nil {
		t.Fatalf("umount: %v: %s", err, out)
	}
	if !waitExit(t, pid) || isMounted(mp) {
		t.Fatal("still mounted, or the daemon still runs")
	}
}

// An fstab line mounted by root with no HOME (as at boot): the journal and
// the log are the system's, and type ssecfs (mount.ssecfs) takes a bare
// bucket name.
func TestAnFstabLineIsMountedByRootWithoutHome(t *testing.T) {
	needInstalled(t)
	s := loadServer(t, "rgw")
	b, mp := s.bucket(t), t.TempDir()
	addFstab(t, fmt.Sprintf("%s %s ssecfs noauto,_netdev,endpoint=%s,ca_file=%s,key_file=%s 0 0",
		b, mp, s.endpoint, s.ca, keyFile(t, secret)))
	cmd := exec.Command("mount", mp)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "AWS_ACCESS_KEY_ID=" + s.access,
		"AWS_SECRET_ACCESS_KEY=" + s.sec, "AWS_EC2_METADATA_DISABLED=true"}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mount %s (fstab, no HOME): %v: %s", mp, err, out)
	}
	log := "/var/log/ssecfs/" + escapedPath(t, mp) + ".log"
	pid := daemonOf(t, log, mp)
	t.Cleanup(func() {
		exec.Command(installed, "umount", mp).Run()
		waitExit(t, pid)
	})
	if got := findmnt(t, mp); !strings.HasPrefix(got, "fuse.ssecfs ") {
		t.Fatalf("findmnt: %q", got)
	}
	for _, l := range strings.Split(readLog(log), "\n") {
		if strings.Contains(l, "msg=mounted") && strings.Contains(l, "mountpoint="+mp) && !strings.Contains(l, "journal=/var/lib/ssecfs/journal/") {
			t.Fatalf("root's journal is not the system's: %s", l)
		}
	}
	if err := os.WriteFile(filepath.Join(mp, "f"), []byte("at boot"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(installed, "umount", mp).CombinedOutput(); err != nil {
		t.Fatalf("ssecfs umount: %v: %s", err, out)
	}
	waitExit(t, pid)
	if keys := s.keys(t, b); !slices.Contains(keys, "f") {
		t.Fatalf("not uploaded at unmount: %v", keys)
	}
}

// A user,noauto line is mounted by an ordinary user with mount(8), with
// their own key and folders.
func TestAUserFstabLineIsMountedByTheUser(t *testing.T) {
	needInstalled(t)
	s := loadServer(t, "rgw")
	u, err := user.Lookup(testUser)
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	b := s.bucket(t)
	home, err := os.MkdirTemp("", "ssecfs-home-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	mp, key := filepath.Join(home, "bucket"), filepath.Join(home, "key")
	os.Mkdir(mp, 0o700)
	os.WriteFile(key, []byte(secret), 0o600)
	for _, p := range []string{home, mp, key} {
		if err := os.Chown(p, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	addFstab(t, fmt.Sprintf("s3://%s %s fuse.ssecfs user,noauto,endpoint=%s,ca_file=%s,key_file=%s 0 0",
		b, mp, s.endpoint, s.ca, key))
	as := func(args ...string) (string, error) {
		cmd := exec.Command("runuser", append([]string{"-u", testUser, "--", "env", "HOME=" + home,
			"AWS_ACCESS_KEY_ID=" + s.access, "AWS_SECRET_ACCESS_KEY=" + s.sec}, args...)...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := as("mount", mp); err != nil {
		t.Fatalf("mount %s as %s: %v: %s", mp, testUser, err, out)
	}
	t.Cleanup(func() {
		if isMounted(mp) {
			as(installed, "umount", mp)
		}
	})
	// mount(8) hands its helpers no HOME of the user's choosing: the
	// user's folders are found through the password database.
	log := filepath.Join(u.HomeDir, ".local", "state", "ssecfs", "log", escapedPath(t, mp)+".log")
	pid := daemonOf(t, log, mp)
	t.Cleanup(func() {
		if isMounted(mp) {
			as(installed, "umount", mp)
		}
		waitExit(t, pid)
	})
	if out, err := as("sh", "-c", "echo mine > "+filepath.Join(mp, "f")+" && stat -c %U "+filepath.Join(mp, "f")); err != nil || strings.TrimSpace(out) != testUser {
		t.Fatalf("write as the user: %v: %q", err, out)
	}
	if out, err := as(installed, "umount", mp); err != nil {
		t.Fatalf("ssecfs umount as the user: %v: %s", err, out)
	}
	waitExit(t, pid)
	if keys := s.keys(t, b); !slices.Contains(keys, "f") {
		t.Fatalf("not uploaded at unmount: %v", keys)
	}
}

// escapedPath is a mountpoint's log name, as systemd-escape --path gives it.
func escapedPath(t *testing.T, mp string) string {
	t.Helper()
	out, err := exec.Command("systemd-escape", "--path", mp).Output()
	if err != nil {
		// No systemd here: a test's folders hold nothing to escape.
		if strings.Trim(mp, "/abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") != "" {
			t.Fatalf("systemd-escape: %v", err)
		}
		return strings.ReplaceAll(strings.Trim(mp, "/"), "/", "-")
	}
	return strings.TrimSpace(string(out))
}
