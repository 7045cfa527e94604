package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"

	"golang.org/x/sys/unix"
)

func runUmount(args []string) int {
	f := flag.NewFlagSet("umount", flag.ContinueOnError)
	lazy := f.Bool("z", false, "lazy: detach now, finish when the last file is closed")
	f.BoolVar(lazy, "lazy", false, "same as -z")
	f.SetOutput(io.Discard)
	pos, err := parseInterleaved(f, args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Println("Usage: ssecfs umount [-z] MOUNTPOINT\n\nUnmounts; as root or as the user who mounted.")
		printFlags(os.Stdout, f)
		return 0
	}
	if err == nil && len(pos) != 1 {
		err = errors.New("expected MOUNTPOINT")
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "ssecfs umount: %v (see ssecfs umount --help)\n", err)
		return 2
	}
	mp, err := filepath.Abs(pos[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, "ssecfs umount:", err)
		return 1
	}
	if mounted, err := isMounted(mp); err == nil && !mounted {
		fmt.Fprintf(os.Stderr, "ssecfs umount: %s is not mounted\n", mp)
		return 1
	}
	if !*lazy {
		// The daemon unmounts, uploads what waits, and answers with the
		// outcome: a non-zero exit if anything could not be uploaded.
		if r, err := ask(mp, "unmount", 0); err == nil {
			switch {
			case r.Error != "":
				fmt.Fprintf(os.Stderr, "ssecfs umount: %s: %s\n", mp, r.Error)
				return 1
			case !r.OK:
				fmt.Fprintf(os.Stderr, "ssecfs umount: %s is unmounted, but files could not be uploaded; they stay in the journal %s and are uploaded by the next mount:\n", mp, r.Journal)
				printStatus(r)
				return 1
			}
			return 0
		}
	}
	if os.Geteuid() == 0 {
		flags := 0
		if *lazy {
			flags = unix.MNT_DETACH
		}
		if err := unix.Unmount(mp, flags); err != nil {
			if errors.Is(err, unix.EBUSY) {
				fmt.Fprintf(os.Stderr, "ssecfs umount: %s is busy: close the files and shells using it, or use -z\n", mp)
			} else {
				fmt.Fprintf(os.Stderr, "ssecfs umount: %s: %v\n", mp, err)
			}
			return 1
		}
		return 0
	}
	// An ordinary user unmounts through the setuid helper, as mounting did.
	fargs := []string{"-u"}
	if *lazy {
		fargs = append(fargs, "-z")
	}
	cmd := exec.Command("fusermount3", append(fargs, mp)...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "ssecfs umount: fusermount3 -u %s failed: %v\n", mp, err)
		return 1
	}
	return 0
}
