package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/ssecfs/ssecfs/keys"
	"github.com/ssecfs/ssecfs/store"
)

const keyUsage = `Usage:
  ssecfs key create [--name NAME] [--os-cloud CLOUD]
      Make a new key (32 printable characters from a secure random source),
      store it in Barbican as "openstack secret store --algorithm aes
      --bit-length 256" does, and print only the secret's href.
  ssecfs key check [key option] [S3 options] BUCKET[/PREFIX]
      Tell whether the key opens the bucket's objects, without printing it.
      Exit 0: it does; 1: it does not (or an error); 3: no encrypted object
      to check it against.

Options:
`

func runKey(args []string) int {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, keyUsage)
		return 2
	}
	switch args[0] {
	case "create":
		return runKeyCreate(args[1:])
	case "check":
		return runKeyCheck(args[1:])
	case "-h", "--help", "help":
		fmt.Print(keyUsage)
		return 0
	}
	fmt.Fprintf(os.Stderr, "ssecfs key: unknown command %q\n\n%s", args[0], keyUsage)
	return 2
}

func runKeyCreate(args []string) int {
	f := flag.NewFlagSet("key create", flag.ContinueOnError)
	f.SetOutput(io.Discard)
	var b keys.Barbican
	name := f.String("name", "objectSecret", "the secret's `NAME` in Barbican")
	addBarbicanLogin(f, &b)
	pos, err := parseInterleaved(f, args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Print(keyUsage)
		printFlags(os.Stdout, f)
		return 0
	}
	if err == nil && len(pos) != 0 {
		err = fmt.Errorf("unexpected argument %q", pos[0])
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "ssecfs key create: %v (see ssecfs key --help)\n", err)
		return 2
	}
	_ = keys.ProtectProcess()
	k, err := keys.Generate()
	if err != nil {
		fmt.Fprintln(os.Stderr, "ssecfs key create:", err)
		return 1
	}
	defer k.Wipe()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	href, err := keys.StoreInBarbican(ctx, b, *name, k)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ssecfs key create:", err)
		return 1
	}
	fmt.Println(href)
	return 0
}

func runKeyCheck(args []string) int {
	f := flag.NewFlagSet("key check", flag.ContinueOnError)
	f.SetOutput(io.Discard)
	var (
		s3  s3Options
		src keySource
	)
	s3.add(f)
	src.add(f)
	quiet := f.Bool("q", false, "print nothing; the exit code tells")
	pos, err := parseInterleaved(f, args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Print(keyUsage)
		printFlags(os.Stdout, f)
		return 0
	}
	if err == nil && len(pos) != 1 {
		err = errors.New("expected BUCKET[/PREFIX]")
	}
	if err == nil {
		err = src.check()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "ssecfs key check: %v (see ssecfs key --help)\n", err)
		return 2
	}
	say := func(format string, a ...any) {
		if !*quiet {
			fmt.Printf(format+"\n", a...)
		}
	}
	bucket, prefix, err := parseTarget(pos[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, "ssecfs key check:", err)
		return 2
	}
	_ = keys.ProtectProcess()
	k, err := src.read()
	if err != nil {
		fmt.Fprintln(os.Stderr, "ssecfs key check:", err)
		return 1
	}
	defer k.Wipe()
	st, err := s3.store(bucket, k, slog.New(slog.DiscardHandler), false)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ssecfs key check:", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), min(s3.timeout, 30*time.Second))
	defer cancel()
	where := fmt.Sprintf("bucket %q at %s", bucket, st.Endpoint())
	if err := st.CheckBucket(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "ssecfs key check:", explain(err, where, s3.timeout))
		return 1
	}
	v, err := store.VerifyKey(ctx, st, prefix, 16)
	switch {
	case err != nil:
		fmt.Fprintln(os.Stderr, "ssecfs key check:", explain(err, where, s3.timeout))
		return 1
	case v.Proven:
		say("the key (%s) opens the objects of %s/%s", k, bucket, prefix)
		return 0
	}
	say("no object of %s/%s is encrypted: nothing to check the key against (%d checked)", bucket, prefix, v.Checked)
	return 3
}
