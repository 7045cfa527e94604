// Command ssecfs mounts an S3 bucket whose objects are encrypted with SSE-C
// (customer-provided keys) as a directory.
package main

import (
	"fmt"
	"os"
	"runtime/debug"
	"strings"
)

// version is set at build time with -ldflags "-X main.version=..." (make);
// a plain go build or go install reports what its build info holds.
var version = ""

// versionString is the version as ssecfs reports it: make's, else the
// module's version (go install ...@v1.2.3, or the pseudo-version go build
// makes of the revision: v0.0.0-DATE-REVISION[+dirty]), else the VCS
// revision of the tree it was built from.
func versionString() string {
	if version != "" {
		return version
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "dev"
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, dirty string
	for _, s := range info.Settings {
		switch {
		case s.Key == "vcs.revision" && len(s.Value) >= 12:
			rev = s.Value[:12]
		case s.Key == "vcs.modified" && s.Value == "true":
			dirty = "-dirty"
		}
	}
	if rev == "" {
		return "dev"
	}
	return rev + dirty
}

const usage = `ssecfs mounts an S3 bucket encrypted with SSE-C as a directory.

Usage:
  ssecfs mount [options] BUCKET[/PREFIX] MOUNTPOINT   mount (see ssecfs mount --help)
  ssecfs s3://BUCKET[/PREFIX] MOUNTPOINT -o OPTIONS   the same, as mount(8) and fstab call it
  ssecfs umount [-z] MOUNTPOINT                       upload what waits, then unmount
  ssecfs status [--json] [MOUNTPOINT]                 every mount: what waits, failures, cache, requests
  ssecfs sync MOUNTPOINT [PATH]                       upload what waits now, without unmounting
  ssecfs key create | check                           make a key in Barbican; test a key
  ssecfs uploads [--abort] BUCKET[/PREFIX]            list or abort incomplete multipart uploads
  ssecfs version                                      print the version

The key is the same 32-character secret that aws, rclone and mc take with
--sse-c-key, --s3-sse-customer-key or --encrypt-key. It comes from
OpenStack Barbican, a file or a variable, never from the command line:

  ssecfs mount --os-cloud mycloud --barbican-secret "$secret_href" \
      --endpoint https://s3.example.net my-backups ~/backups
  ls ~/backups
  ssecfs umount ~/backups

  (or --key-file ~/.config/ssecfs/key, a file only you can read)
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	awsFiles()
	if strings.HasPrefix(os.Args[1], "s3://") {
		// ssecfs s3://BUCKET MOUNTPOINT -o OPTIONS: mount(8), fstab.
		os.Exit(runHelper(os.Args[1:]))
	}
	var code int
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "mount":
		code = runMount(args)
	case "umount", "unmount":
		code = runUmount(args)
	case "status":
		code = runStatus(args)
	case "sync":
		code = runSync(args)
	case "key":
		code = runKey(args)
	case "uploads":
		code = runUploads(args)
	case "version", "--version", "-V":
		fmt.Println("ssecfs", versionString())
	case "help", "--help", "-h":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "ssecfs: unknown command %q\n\n%s", cmd, usage)
		code = 2
	}
	os.Exit(code)
}
