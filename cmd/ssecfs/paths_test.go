package main

import (
	"os"
	"path/filepath"
	"testing"
)

// Root's state is the system's whatever HOME says (a boot mount has none),
// so that a journal left by a mount by hand is resumed by the one at boot;
// XDG_STATE_HOME still moves it.
func TestRootsStateIsTheSystemsWithOrWithoutHome(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("root's folders")
	}
	for _, home := range []string{"", "/root", t.TempDir()} {
		t.Setenv("HOME", home)
		if home == "" {
			os.Unsetenv("HOME")
		}
		t.Setenv("XDG_STATE_HOME", "")
		t.Setenv("XDG_CACHE_HOME", "")
		if got := defaultJournalRoot(); got != "/var/lib/ssecfs/journal" {
			t.Fatalf("HOME=%q: journal in %s", home, got)
		}
		if got := defaultCacheRoot(); got != "/var/cache/ssecfs" {
			t.Fatalf("HOME=%q: cache in %s", home, got)
		}
		if got := defaultLogPath("/srv/back-ups"); got != `/var/log/ssecfs/srv-back\x2dups.log` {
			t.Fatalf("HOME=%q: log in %s", home, got)
		}
	}
	state := t.TempDir()
	t.Setenv("XDG_STATE_HOME", state)
	if got := defaultJournalRoot(); got != filepath.Join(state, "ssecfs", "journal") {
		t.Fatalf("XDG_STATE_HOME: journal in %s", got)
	}
}

// HOME that is not the user's (mount.fuse3's setuid= keeps root's) is not
// used: the password database's is.
func TestAHomeOfAnotherUserIsNotUsed(t *testing.T) {
	other := t.TempDir()
	if err := os.Chown(other, 65534, 65534); err != nil {
		t.Skip("cannot give a folder away:", err)
	}
	t.Setenv("HOME", other)
	if got := homeDir(); got == other {
		t.Fatalf("home %s belongs to another user", got)
	}
}

// The AWS files are the user's ~/.aws if there, else /etc/ssecfs/aws.
func TestAWSFilesComeFromTheHomeFoundElseTheSystem(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("AWS_CONFIG_FILE", "")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/set/by/the/user")
	os.MkdirAll(filepath.Join(home, ".aws"), 0o700)
	os.WriteFile(filepath.Join(home, ".aws", "config"), nil, 0o600)
	os.Unsetenv("AWS_CONFIG_FILE")
	awsFiles()
	if got := os.Getenv("AWS_CONFIG_FILE"); got != filepath.Join(home, ".aws", "config") {
		t.Fatalf("AWS_CONFIG_FILE=%q", got)
	}
	if got := os.Getenv("AWS_SHARED_CREDENTIALS_FILE"); got != "/set/by/the/user" {
		t.Fatalf("a variable set by the user was changed: %q", got)
	}
}

// A log's name is the mountpoint as systemd-escape --path writes it.
func TestLogNamesAreTheMountpointEscapedAsSystemdDoes(t *testing.T) {
	for in, want := range map[string]string{
		"/srv/backups":        "srv-backups",
		"/home/ann/My Files/": `home-ann-My\x20Files`,
		"/mnt/a-b":            `mnt-a\x2db`,
		"/mnt/.hidden/x.y":    "mnt-.hidden-x.y",
		"/.dot/x":             `\x2edot-x`,
		"/":                   "-",
	} {
		if got := escapePath(in); got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
}

// Root's control sockets are in /run/ssecfs whatever the session's
// XDG_RUNTIME_DIR: a root shell finds the mounts made at boot.
func TestRootsControlSocketsAreTheSystemsWhateverTheSession(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
	if got := runtimeDir(); got != "/run/ssecfs" {
		t.Fatalf("root's runtime folder with XDG_RUNTIME_DIR set: %s", got)
	}
}
