package keys

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// maxInput bounds what is read of any key source: a little more than the
// longest form (64 hex digits and a line end), so that a wrong file or a
// chatty command is refused without reading it all.
const maxInput = 80

// IsTerminal reports whether f is a terminal.
func IsTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// Prompt reads the key from the terminal tty with its echo off, after
// writing label to prompt (standard error), as ssh and gocryptfs ask for a
// passphrase. An interrupt while it waits restores the echo before the
// process ends.
func Prompt(tty *os.File, prompt io.Writer, label string) (*Key, error) {
	fd := int(tty.Fd())
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, fmt.Errorf("key prompt: %w", err)
	}
	quiet := *old
	quiet.Lflag &^= unix.ECHO | unix.ECHOE | unix.ECHOK
	quiet.Lflag |= unix.ICANON | unix.ECHONL
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &quiet); err != nil {
		return nil, fmt.Errorf("key prompt: %w", err)
	}
	restore := func() { unix.IoctlSetTermios(fd, unix.TCSETS, old) }
	defer restore()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case s := <-sigs:
			restore()
			fmt.Fprintln(prompt)
			os.Exit(128 + int(s.(syscall.Signal)))
		case <-done:
		}
	}()
	fmt.Fprint(prompt, label)
	// Canonical mode: the terminal hands over the line once Enter is
	// pressed. Read byte by byte so that nothing past it is taken.
	buf := make([]byte, maxInput)
	n := 0
	for n < len(buf) {
		m, err := tty.Read(buf[n : n+1])
		if m == 1 && buf[n] == '\n' {
			return Parse(buf[:n])
		}
		n += m
		if err != nil || m == 0 {
			if errors.Is(err, io.EOF) || m == 0 {
				return Parse(buf[:n]) // Ctrl-D after the key
			}
			wipe(buf)
			return nil, fmt.Errorf("key prompt: %w", err)
		}
	}
	wipe(buf)
	return nil, fmt.Errorf("%w: input is longer than any key form", ErrBadKey)
}

// FromCommand runs command with sh -c and reads the key from its standard
// output (pass, secret-tool, systemd-creds, gpg -d): the key is never in an
// argument. Its standard input and error are the caller's, so that a
// pinentry or a passphrase prompt reaches the user. The command's text
// may appear in errors; its output never does.
func FromCommand(ctx context.Context, command string) (*Key, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", command)
	cmd.Stdin, cmd.Stderr = os.Stdin, os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("key command: %w", err)
	}
	buf := make([]byte, maxInput+1)
	n, rerr := io.ReadFull(out, buf)
	io.Copy(io.Discard, out) // let it finish writing; what is past the bound is refused below
	werr := cmd.Wait()
	switch {
	case ctx.Err() != nil:
		wipe(buf)
		return nil, fmt.Errorf("key command %q: no key within 2 minutes", command)
	case werr != nil:
		wipe(buf)
		return nil, fmt.Errorf("key command %q: %w", command, werr)
	case rerr == nil:
		wipe(buf)
		return nil, fmt.Errorf("key command %q: %w: its output is longer than any key form", command, ErrBadKey)
	}
	k, err := Parse(bytes.TrimRight(buf[:n], "\r\n"))
	if err != nil {
		return nil, fmt.Errorf("key command %q: %w", command, err)
	}
	return k, nil
}
