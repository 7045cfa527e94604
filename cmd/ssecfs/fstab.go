package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/user"
	"strings"
)

// mount(8), fstab and mount.fuse3 call a filesystem as
//
//	ssecfs s3://BUCKET[/PREFIX] MOUNTPOINT [-o OPTIONS] [-s] [-n] [-v]
//
// (type fuse.ssecfs; mount.ssecfs, type ssecfs, turns a bare bucket name
// into s3://BUCKET and calls mount.fuse3 the same way). helperArgs turns
// that into ssecfs mount's arguments. Every option of ssecfs mount has an
// -o spelling, its long name with dashes written as underscores (dashes
// are accepted too): key_file=/etc/ssecfs/key, endpoint=URL, read_only.
// The generic options mount(8) and libmount hand over are honoured where
// they mean something here and ignored where they do not; an unknown
// option is refused by name, so that a typo in fstab is not a silent
// default.

// errFake is mount -f: do everything but mount (nothing, here).
var errFake = errors.New("fake mount")

// ignoredOptions mean nothing to this mount, or are always so: it is
// always nosuid and nodev (objects' modes come from anyone with the
// bucket's credentials) and its access times are not kept; mount(8) and
// mount.fuse3 act on the rest themselves (mount.fuse3 adds dev,suid to
// every call).
var ignoredOptions = map[string]bool{
	"defaults": true, "auto": true, "noauto": true, "user": true, "users": true, "nouser": true,
	"owner": true, "group": true, "_netdev": true, "nofail": true, "async": true,
	"exec": true, "dev": true, "nodev": true, "suid": true, "nosuid": true,
	"atime": true, "noatime": true, "relatime": true, "norelatime": true, "strictatime": true,
	"nostrictatime": true, "lazytime": true, "nolazytime": true, "diratime": true, "nodiratime": true,
	"iversion": true, "noiversion": true, "silent": true, "loud": true, "default_permissions": true,
}

// ignoredPrefixes are option families for other programs: systemd's,
// desktops', comments, and the subtype and name mount.fuse3 may pass.
var ignoredPrefixes = []string{"x-", "X-", "comment=", "subtype=", "fsname=", "helper="}

// helperArgs turns mount(8)'s calling convention into ssecfs mount's
// arguments. flags says which options exist and which are booleans.
func helperArgs(args []string, flags *flag.FlagSet) ([]string, error) {
	if len(args) < 2 || strings.HasPrefix(args[1], "-") {
		return nil, errors.New("expected s3://BUCKET[/PREFIX] MOUNTPOINT [-o OPTIONS]")
	}
	var out []string
	for i := 2; i < len(args); i++ {
		switch a := args[i]; {
		case a == "-o" && i+1 < len(args):
			opts, err := optionFlags(args[i+1], flags)
			if err != nil {
				return nil, err
			}
			out = append(out, opts...)
			i++
		case strings.HasPrefix(a, "-o") && len(a) > 2:
			opts, err := optionFlags(a[2:], flags)
			if err != nil {
				return nil, err
			}
			out = append(out, opts...)
		case a == "-s", a == "-n", a == "-v":
			// Sloppy, no mtab, verbose: nothing to do differently.
		case a == "-f":
			return nil, errFake
		default:
			return nil, fmt.Errorf("unexpected argument %q (mount options go in -o OPTIONS)", a)
		}
	}
	return append(out, args[0], args[1]), nil
}

// optionFlags turns one -o list into flags. Values may be double-quoted,
// to hold a comma: key_command="pass show ssecfs,backups".
func optionFlags(list string, flags *flag.FlagSet) ([]string, error) {
	var out, unknown []string
	for _, opt := range splitOptions(list) {
		name, value, hasValue := strings.Cut(opt, "=")
		value = strings.Trim(value, `"`)
		switch {
		case name == "":
		case ignoredOptions[name] || hasPrefix(opt, ignoredPrefixes):
		case name == "ro":
			out = append(out, "--read-only")
		case name == "rw":
			out = append(out, "--read-only=false") // the last of ro and rw wins
		case name == "sync":
			// Writes synchronous: close(2) returns once uploaded.
			out = append(out, "--write-back=0")
		case name == "setuid":
			return nil, errors.New("setuid=USER is handled by mount.fuse3: mount with type fuse.ssecfs (fstab, mount -t) or mount.ssecfs")
		case (name == "uid" || name == "gid") && hasValue:
			id, err := lookupID(name, value)
			if err != nil {
				return nil, err
			}
			out = append(out, "--"+name+"="+id)
		default:
			flagName := strings.ReplaceAll(name, "_", "-")
			f := flags.Lookup(flagName)
			if f == nil || len(flagName) == 1 {
				unknown = append(unknown, name)
				continue
			}
			isBool := false
			if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
				isBool = true
			}
			switch {
			case hasValue:
				out = append(out, "--"+flagName+"="+value)
			case isBool:
				out = append(out, "--"+flagName)
			default:
				return nil, fmt.Errorf("mount option %s needs a value: %s=...", name, name)
			}
		}
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("unknown mount option %s (every option of ssecfs mount --help is one, with _ for -: key_file=FILE)", strings.Join(unknown, ", "))
	}
	return out, nil
}

// splitOptions splits on commas outside double quotes.
func splitOptions(list string) []string {
	var out []string
	quoted, start := false, 0
	for i := 0; i < len(list); i++ {
		switch list[i] {
		case '"':
			quoted = !quoted
		case ',':
			if !quoted {
				out = append(out, list[start:i])
				start = i + 1
			}
		}
	}
	return append(out, list[start:])
}

func hasPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// lookupID accepts a number or a user or group name, as fstab lines for
// other filesystems do.
func lookupID(kind, v string) (string, error) {
	if v != "" && strings.Trim(v, "0123456789") == "" {
		return v, nil
	}
	if kind == "uid" {
		u, err := user.Lookup(v)
		if err != nil {
			return "", fmt.Errorf("uid=%s: no such user", v)
		}
		return u.Uid, nil
	}
	g, err := user.LookupGroup(v)
	if err != nil {
		return "", fmt.Errorf("gid=%s: no such group", v)
	}
	return g.Gid, nil
}

// runHelper mounts as mount(8) asks (see helperArgs).
func runHelper(args []string) int {
	margs, err := helperArgs(args, mountFlags(&mountConfig{}))
	switch {
	case errors.Is(err, errFake):
		return 0
	case err != nil:
		fmt.Fprintln(os.Stderr, "ssecfs:", err)
		return 2
	}
	return runMount(margs)
}
