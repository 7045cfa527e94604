package main

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestMountHelperOptionsBecomeFlags(t *testing.T) {
	flags := mountFlags(&mountConfig{})
	for _, c := range []struct {
		name string
		args []string
		want []string
	}{
		{"what mount.fuse3 passes for an fstab line",
			[]string{"s3://b/p", "/mnt", "-o", "rw,allow_other,key_file=/etc/ssecfs/key,x-systemd.automount,defaults,noatime,uid=1000,dev,suid"},
			[]string{"--read-only=false", "--allow-other", "--key-file=/etc/ssecfs/key", "--uid=1000", "s3://b/p", "/mnt"}},
		{"dashes and underscores, values with = and quoted commas",
			[]string{"s3://b", "/mnt", "-o", `ro,ca-file=/ca.pem,barbican_secret=https://kv/v1/secrets/x?a=b,key_command="pass show a,b",no_meta_cache,journal_size=2G`},
			[]string{"--read-only", "--ca-file=/ca.pem", "--barbican-secret=https://kv/v1/secrets/x?a=b", "--key-command=pass show a,b", "--no-meta-cache", "--journal-size=2G", "s3://b", "/mnt"}},
		{"generic options",
			[]string{"s3://b", "/mnt", "-s", "-n", "-v", "-onosuid,nodev,noexec,sync,gid=0,subtype=ssecfs,comment=x,_netdev,nofail,user,noauto"},
			[]string{"--noexec", "--write-back=0", "--gid=0", "s3://b", "/mnt"}},
		{"uid by name", []string{"s3://b", "/mnt", "-o", "uid=root"}, []string{"--uid=0", "s3://b", "/mnt"}},
	} {
		got, err := helperArgs(c.args, flags)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if !slices.Equal(got, c.want) {
			t.Fatalf("%s:\n got %q\nwant %q", c.name, got, c.want)
		}
		// What comes out is what ssecfs mount parses.
		if _, err := parseMount(append(got, "--key-env=K")); err != nil && !strings.Contains(err.Error(), "only one of") {
			t.Fatalf("%s: ssecfs mount refuses %q: %v", c.name, got, err)
		}
	}
}

func TestMountHelperRefusesUnknownOptionsByName(t *testing.T) {
	flags := mountFlags(&mountConfig{})
	for opts, want := range map[string]string{
		"key_fiel=/k,rw,endpont=x": "unknown mount option key_fiel, endpont",
		"f":                        "unknown mount option f",
		"key_file":                 "mount option key_file needs a value",
		"uid=nosuchuser-xyz":       "uid=nosuchuser-xyz: no such user",
		"setuid=bob":               "setuid=USER is handled by mount.fuse3",
	} {
		_, err := helperArgs([]string{"s3://b", "/mnt", "-o", opts}, flags)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("-o %s: got %v, want %q", opts, err, want)
		}
	}
	if _, err := helperArgs([]string{"s3://b", "/mnt", "-f"}, flags); !errors.Is(err, errFake) {
		t.Fatalf("-f: %v", err)
	}
	if _, err := helperArgs([]string{"s3://b", "/mnt", "--read-only"}, flags); err == nil {
		t.Fatal("a flag outside -o was taken")
	}
}
