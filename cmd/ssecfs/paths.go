package main

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Where a mount keeps its state. A user's mount keeps it in the XDG
// folders of their home; root's, wherever it is mounted from (a shell, an
// fstab line at boot, a systemd unit, mount.fuse3 with no HOME at all),
// in the system's, so that a journal left by one is resumed by the next:
//
//	           user                          root
//	state      ~/.local/state/ssecfs         /var/lib/ssecfs
//	cache      ~/.cache/ssecfs               /var/cache/ssecfs
//	log        ~/.local/state/ssecfs/log/MP.log  /var/log/ssecfs/MP.log
//
// (MP: the mountpoint as systemd-escape --path writes it; one log per
// mount, rotated at --log-max-size).
//
// XDG_STATE_HOME and XDG_CACHE_HOME move them for either.

// homeDir is the user's home: $HOME if it is theirs (mount.fuse3's
// setuid= and su may pass root's along), else the one in the password
// database; "" if there is none.
func homeDir() string {
	uid := os.Getuid()
	if h := os.Getenv("HOME"); h != "" {
		var st syscall.Stat_t
		if syscall.Stat(h, &st) == nil && int(st.Uid) == uid {
			return h
		}
	}
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil && u.HomeDir != "" {
		var st syscall.Stat_t
		if syscall.Stat(u.HomeDir, &st) == nil && int(st.Uid) == uid {
			return u.HomeDir
		}
	}
	return ""
}

// systemWide says the mount keeps its state in the system's folders.
func systemWide() bool { return os.Geteuid() == 0 }

func stateHome() string {
	if dir := os.Getenv("XDG_STATE_HOME"); dir != "" {
		return filepath.Join(dir, "ssecfs")
	}
	if h := homeDir(); h != "" && !systemWide() {
		return filepath.Join(h, ".local", "state", "ssecfs")
	}
	return "/var/lib/ssecfs"
}

func defaultCacheRoot() string {
	if dir := os.Getenv("XDG_CACHE_HOME"); dir != "" {
		return filepath.Join(dir, "ssecfs")
	}
	if h := homeDir(); h != "" && !systemWide() {
		return filepath.Join(h, ".cache", "ssecfs")
	}
	return "/var/cache/ssecfs"
}

// defaultLogPath is one log per mount, named after its mountpoint as
// systemd-escape --path names it (/srv/backups: srv-backups.log).
func defaultLogPath(mountpoint string) string {
	return filepath.Join(defaultLogDir(), escapePath(mountpoint)+".log")
}

func defaultLogDir() string {
	if os.Getenv("XDG_STATE_HOME") == "" && systemWide() {
		return "/var/log/ssecfs"
	}
	return filepath.Join(stateHome(), "log")
}

// escapePath is systemd-escape --path: "/" becomes "-", and every byte but
// letters, digits, ':', '_' and a '.' not first becomes \xNN, so that two
// mountpoints never share a name.
func escapePath(p string) string {
	p = strings.Trim(filepath.Clean(p), "/")
	if p == "" {
		return "-"
	}
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '/':
			b.WriteByte('-')
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == ':', c == '_', c == '.' && i > 0:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, `\x%02x`, c)
		}
	}
	return b.String()
}

func defaultJournalRoot() string { return filepath.Join(stateHome(), "journal") }

func defaultMetaRoot() string { return filepath.Join(stateHome(), "metadata") }

// systemAWS holds the AWS configuration of mounts with no user's: root's
// at boot, or a user with no ~/.aws.
const systemAWS = "/etc/ssecfs/aws"

// awsFiles points the AWS configuration and credentials files at the
// user's ~/.aws (found through homeDir: HOME is often unset at boot, or
// another user's), else at /etc/ssecfs/aws/config and credentials when
// they exist. AWS_CONFIG_FILE and AWS_SHARED_CREDENTIALS_FILE win.
func awsFiles() {
	home := homeDir()
	for _, f := range []struct{ env, name string }{
		{"AWS_CONFIG_FILE", "config"}, {"AWS_SHARED_CREDENTIALS_FILE", "credentials"},
	} {
		if os.Getenv(f.env) != "" {
			continue
		}
		places := []string{filepath.Join(systemAWS, f.name)}
		if home != "" {
			places = append([]string{filepath.Join(home, ".aws", f.name)}, places...)
		}
		for _, p := range places {
			if _, err := os.Stat(p); err == nil {
				os.Setenv(f.env, p)
				break
			}
		}
	}
}
