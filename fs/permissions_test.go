package fs

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/ssecfs/ssecfs/cache"
	"github.com/ssecfs/ssecfs/store/memstore"
)

// Permissions are the kernel's (default_permissions) against the modes
// shown, and other users cannot enter a mount without --allow-other.
func TestOtherUsersNeedAllowOtherAndTheModesShown(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("in-process FUSE tests mount directly and need root")
	}
	m := memstore.New(ourMD5)
	m.Seed("open", []byte("o"), map[string]string{"mode": "33188"}, ourMD5)    // 0644
	m.Seed("private", []byte("p"), map[string]string{"mode": "33152"}, ourMD5) // 0600
	const nobody = 65534
	readAs := func(path string) error {
		cmd := exec.Command("cat", path)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	}
	for _, allowOther := range []bool{false, true} {
		c, _ := cache.New(cache.Options{Size: 64 << 10, BlockSize: 4 << 10, Parallel: 4})
		f, err := New(Options{Store: m, Cache: c})
		if err != nil {
			t.Fatal(err)
		}
		// The way down to the mountpoint is open to all: only the mount
		// decides.
		dir := t.TempDir()
		for p := dir; p != os.TempDir() && p != "/"; p = filepath.Dir(p) {
			if err := os.Chmod(p, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		srv, err := f.Mount(dir, MountOptions{FsName: "ssecfs:test", AllowOther: allowOther})
		if err != nil {
			t.Fatal(err)
		}
		openErr, privErr := readAs(filepath.Join(dir, "open")), readAs(filepath.Join(dir, "private"))
		if err := srv.Unmount(); err != nil {
			t.Fatal(err)
		}
		srv.Wait()
		if !allowOther && openErr == nil {
			t.Error("without allow_other another user read a 0644 file")
		}
		if allowOther && openErr != nil {
			t.Errorf("with allow_other another user cannot read a 0644 file: %v", openErr)
		}
		if privErr == nil {
			t.Errorf("allow_other %v: another user read a 0600 file of the mounting user", allowOther)
		}
	}
}
