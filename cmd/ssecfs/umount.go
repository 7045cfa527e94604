package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ssecfs/ssecfs/keys"
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
		if r, err := unmountShowing(mp, os.Stderr); err == nil {
			switch {
			case r.Error != "":
				fmt.Fprintf(os.Stderr, "ssecfs umount: %s: %s\n", mp, r.Error)
				return 1
			case !r.OK:
				fmt.Fprintf(os.Stderr, "ssecfs umount: %s is unmounted, but files could not be uploaded; they stay in the journal %s and are uploaded by the next mount:\n", mp, r.Journal.Dir)
				printStatus(os.Stderr, r)
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

// unmountShowing asks the daemon of mp to unmount and, while it uploads
// what waits, shows how far it is on w: one line rewritten every second
// on a terminal; otherwise a plain line after a second (a log shows at
// once that the unmount waits for uploads), then every 10 s; then a
// summary, if anything waited.
func unmountShowing(mp string, w *os.File) (reply, error) {
	before, _ := ask(mp, "status", 10*time.Second)
	type result struct {
		r   reply
		err error
	}
	done := make(chan result, 1)
	go func() {
		r, err := ask(mp, "unmount", 0)
		done <- result{r, err}
	}()
	tty := keys.IsTerminal(w)
	every := 10 * time.Second
	if tty {
		every = time.Second
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	start, shown := time.Now(), false
	for {
		select {
		case res := <-done:
			if shown && tty {
				fmt.Fprint(w, "\r\x1b[K")
			}
			if res.err == nil && res.r.Error == "" && (before.Waiting.Files > 0 || shown) {
				n, b := res.r.Uploads.Done-before.Uploads.Done, res.r.Uploads.Bytes-before.Uploads.Bytes
				fmt.Fprintf(w, "%s: unmounted; uploaded %s (%s) in %s\n", mp, plural(int(n), "file"), human(b),
					time.Since(start).Round(time.Millisecond))
			}
			return res.r, res.err
		case <-t.C:
		}
		t.Reset(every)
		r, err := ask(mp, "status", every)
		if err != nil || r.Waiting.Files == 0 {
			continue
		}
		line := fmt.Sprintf("uploading before unmount: %s (%s) left", plural(int(r.Waiting.Files), "file"), human(r.Waiting.Bytes))
		line += progress(r.Waiting)
		if r.OfflineSince != "" {
			line += "; offline since " + r.OfflineSince
		}
		if tty {
			fmt.Fprint(w, "\r\x1b[K"+line)
		} else {
			fmt.Fprintln(w, line)
		}
		shown = true
	}
}
