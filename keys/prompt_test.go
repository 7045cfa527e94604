package keys

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ssecfs/ssecfs/internal/ptytest"
)

func TestThePromptReadsTheKeyWithoutEchoAndRestoresTheTerminal(t *testing.T) {
	master, tty := ptytest.Open(t)
	before, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
	if err != nil || before.Lflag&unix.ECHO == 0 {
		t.Fatalf("a new terminal echoes: %v", err)
	}
	var label bytes.Buffer
	type result struct {
		k   *Key
		err error
	}
	got := make(chan result, 1)
	go func() {
		k, err := Prompt(tty, &label, "key: ")
		got <- result{k, err}
	}()
	// Typed once the prompt has turned the echo off: the terminal echoes
	// what arrives while it is on.
	giveUp := time.Now().Add(10 * time.Second)
	for time.Now().Before(giveUp) {
		st, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
		if err != nil {
			t.Fatal(err)
		}
		if st.Lflag&unix.ECHO == 0 {
			break
		}
		select {
		case r := <-got:
			t.Fatalf("the prompt returned before reading: %v", r.err)
		case <-time.After(time.Millisecond):
		}
	}
	if time.Now().After(giveUp) {
		t.Fatal("the prompt never turned the echo off")
	}
	master.Write([]byte(secret + "\n"))
	r := <-got
	if r.err != nil {
		t.Fatal(r.err)
	}
	if string(r.k.Bytes()) != secret || label.String() != "key: " {
		t.Fatalf("key read wrong, or prompt %q", label.String())
	}
	// What the terminal showed: at most the line end, never the key.
	master.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	shown := make([]byte, 256)
	n, _ := master.Read(shown)
	if strings.Contains(string(shown[:n]), secret[:8]) {
		t.Fatalf("the terminal echoed the key: %q", shown[:n])
	}
	after, _ := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
	if after.Lflag != before.Lflag {
		t.Fatalf("terminal modes not restored: %#x, were %#x", after.Lflag, before.Lflag)
	}
}

func TestAKeyCommandsOutputIsTheKey(t *testing.T) {
	k, err := FromCommand(context.Background(), "printf '%s\\n' "+secret)
	if err != nil {
		t.Fatal(err)
	}
	if string(k.Bytes()) != secret {
		t.Fatal("wrong key bytes")
	}
	for cmd, want := range map[string]string{
		"exit 3":                             "exit status 3",
		"echo short":                         "got 5 bytes",
		"head -c 100000 /dev/zero":           "longer than any key form",
		"printf '%s' " + secret + "; exit 1": "exit status 1",
	} {
		_, err := FromCommand(context.Background(), cmd)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("%s: got %v, want an error with %q", cmd, err, want)
		}
		if strings.Contains(err.Error(), secret[:8]) && !strings.Contains(cmd, secret) {
			t.Fatalf("%s: the error shows the output: %v", cmd, err)
		}
	}
	_, err = FromCommand(context.Background(), "head -c 100000 /dev/zero")
	if !errors.Is(err, ErrBadKey) {
		t.Fatalf("an overlong output: %v, want ErrBadKey", err)
	}
}
