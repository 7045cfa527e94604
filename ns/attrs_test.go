package ns

import (
	"testing"
	"time"
)

func TestParseMtimeKeepsNanoseconds(t *testing.T) {
	for in, want := range map[string]time.Time{
		"1700000000":           time.Unix(1700000000, 0),
		"1700000000.5":         time.Unix(1700000000, 500000000),
		"1700000000.123456789": time.Unix(1700000000, 123456789),
		"1700000000.000000001": time.Unix(1700000000, 1),
		" 1700000000.25 ":      time.Unix(1700000000, 250000000),
	} {
		got, ok := parseMtime(in)
		if !ok || !got.Equal(want) {
			t.Errorf("parseMtime(%q) = %v, %v; want %v", in, got, ok, want)
		}
	}
	for _, bad := range []string{"", "abc", "12.x", "1e9"} {
		if _, ok := parseMtime(bad); ok {
			t.Errorf("parseMtime(%q) accepted", bad)
		}
	}
}

func TestParseModeReadsS3fsDecimalAndRcloneOctal(t *testing.T) {
	for in, want := range map[string]uint32{
		"33188":   0o644, // s3fs: full st_mode in decimal
		"0100600": 0o600, // rclone: octal with a leading zero
		"0755":    0o755,
		"420":     0o644,
	} {
		got, ok := parseMode(in)
		if !ok || got&0o7777 != want {
			t.Errorf("parseMode(%q) = %o, %v; want %o", in, got, ok, want)
		}
	}
	if _, ok := parseMode("rwx"); ok {
		t.Error("parseMode accepted rwx")
	}
}

func TestNameProblems(t *testing.T) {
	long := make([]byte, 256)
	for i := range long {
		long[i] = 'a'
	}
	for _, bad := range []string{"", ".", "..", string(long), "a\x00b"} {
		if NameProblem(bad) == "" {
			t.Errorf("%q accepted as a file name", bad)
		}
	}
	for _, good := range []string{"a", "...", "a b", "\xff\xfe", string(long[:255])} {
		if p := NameProblem(good); p != "" {
			t.Errorf("%q refused: %s", good, p)
		}
	}
}
