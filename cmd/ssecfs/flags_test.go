package main

import (
	"strings"
	"testing"
)

// A mistyped option is named as it is typed, with the form it wants.
func TestFlagErrorsNameTheOptionAndTheFormItWants(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--timeout", "5", "b", "/mnt"}, "--timeout 5: a duration like 30s or 2m"},
		{[]string{"--uid", "no-such-user-here", "b", "/mnt"}, "--uid no-such-user-here: no such user (a user name or a number)"},
		{[]string{"--retries", "many", "b", "/mnt"}, "--retries many: a whole number"},
		{[]string{"--cache-size", "lots", "b", "/mnt"}, `--cache-size lots: "lots" is not a size like 256M`},
		{[]string{"--no-such-option", "b", "/mnt"}, "unknown option --no-such-option"},
		{[]string{"b", "/mnt", "--timeout"}, "--timeout needs a value: a duration like 30s or 2m"},
	} {
		_, err := parseMount(c.args)
		if err == nil || err.Error() != c.want {
			t.Errorf("%q: %v, want %q", strings.Join(c.args, " "), err, c.want)
		}
	}
}

// --uid and --gid take names, as -o uid= does.
func TestUidAndGidTakeNames(t *testing.T) {
	c, err := parseMount([]string{"--key-env", "K", "--uid", "root", "--gid", "root", "b", "/mnt"})
	if err != nil {
		t.Fatal(err)
	}
	if c.uid != 0 || c.gid != 0 {
		t.Fatalf("uid %d gid %d, want 0 0", c.uid, c.gid)
	}
}
