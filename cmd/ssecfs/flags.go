package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// parseInterleaved parses flags placed before, between or after the
// positional arguments, as sshfs and mount accept them.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, flagError(fs, err)
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// sizeValue is a byte count written like 256M, 4MiB, 1G or 1048576.
type sizeValue struct{ n *int64 }

func (s sizeValue) String() string {
	if s.n == nil {
		return ""
	}
	return formatSize(*s.n)
}

func (s sizeValue) Set(v string) error {
	n, err := parseSize(v)
	if err != nil {
		return err
	}
	*s.n = n
	return nil
}

func parseSize(v string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(v))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "IB"), "B")
	mult := int64(1)
	if t != "" {
		switch t[len(t)-1] {
		case 'K':
			mult = 1 << 10
		case 'M':
			mult = 1 << 20
		case 'G':
			mult = 1 << 30
		}
		if mult > 1 {
			t = t[:len(t)-1]
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a size like 256M", v)
	}
	return n * mult, nil
}

func formatSize(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%dG", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dM", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%dK", n>>10)
	}
	return strconv.FormatInt(n, 10)
}

// printFlags lists the options GNU style, with two dashes, as users type
// them ("-f" stays short).
func printFlags(w io.Writer, f *flag.FlagSet) {
	f.VisitAll(func(fl *flag.Flag) {
		name, usage := flag.UnquoteUsage(fl)
		dash := "--"
		if len(fl.Name) == 1 {
			dash = "-"
		}
		head := "  " + dash + fl.Name
		if name != "" {
			head += " " + name
		}
		def := ""
		// -1 stands for a default computed at start, which the usage states.
		if fl.DefValue != "" && fl.DefValue != "false" && fl.DefValue != "0" && fl.DefValue != "-1" {
			def = " (default " + fl.DefValue + ")"
		}
		fmt.Fprintf(w, "%-24s %s%s\n", head, usage, def)
	})
}

var (
	badValue  = regexp.MustCompile(`^invalid (?:boolean )?value "(.*)" for (?:flag )?-([^:]+): (.*)$`)
	noValue   = regexp.MustCompile(`^flag needs an argument: -(.+)$`)
	undefined = regexp.MustCompile(`^flag provided but not defined: -(.+)$`)
)

// flagError rewrites the flag package's messages ("invalid value "5" for
// flag -timeout: parse error") to name the option as it is typed and the
// form it wants ("--timeout 5: a duration like 30s or 2m").
func flagError(fs *flag.FlagSet, err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return err
	}
	msg := err.Error()
	if m := badValue.FindStringSubmatch(msg); m != nil {
		why := m[3]
		// The flag package's own types say only "parse error".
		if want := wants(fs.Lookup(m[2])); want != "" && (strings.Contains(why, "parse error") || strings.Contains(why, "out of range")) {
			why = want
		}
		return fmt.Errorf("%s %s: %s", dashed(m[2]), m[1], why)
	}
	if m := noValue.FindStringSubmatch(msg); m != nil {
		if want := wants(fs.Lookup(m[1])); want != "" {
			return fmt.Errorf("%s needs a value: %s", dashed(m[1]), want)
		}
		return fmt.Errorf("%s needs a value", dashed(m[1]))
	}
	if m := undefined.FindStringSubmatch(msg); m != nil {
		return fmt.Errorf("unknown option %s", dashed(m[1]))
	}
	return err
}

// dashed is a flag's name as users type it.
func dashed(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

// wants describes the values a flag takes, from its type.
func wants(f *flag.Flag) string {
	if f == nil {
		return ""
	}
	g, ok := f.Value.(flag.Getter)
	if !ok {
		return ""
	}
	switch g.Get().(type) {
	case time.Duration:
		return "a duration like 30s or 2m"
	case int, int64, uint, uint64:
		return "a whole number"
	case float64:
		return "a number"
	case bool:
		return "true or false"
	}
	return ""
}

// idValue is a user or group id, given as a number or a name (--uid bob).
type idValue struct {
	n    *int
	kind string // "uid" or "gid"
}

func (v idValue) String() string {
	if v.n == nil {
		return ""
	}
	return strconv.Itoa(*v.n)
}

func (v idValue) Set(s string) error {
	id, err := lookupID(v.kind, s)
	if err != nil {
		if v.kind == "uid" {
			return fmt.Errorf("no such user (a user name or a number)")
		}
		return fmt.Errorf("no such group (a group name or a number)")
	}
	n, err := strconv.Atoi(id)
	if err != nil || n < 0 {
		return fmt.Errorf("not an id")
	}
	*v.n = n
	return nil
}
