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
)

const uploadsUsage = `Usage: ssecfs uploads [--abort] [--older-than DURATION] [S3 options] BUCKET[/PREFIX]

Lists the multipart uploads under the prefix that were neither completed
nor aborted (a client that died half-way leaves them, and the bucket keeps
their parts). With --abort, aborts those older than --older-than (default
24h, so that uploads in progress elsewhere are left alone). ssecfs aborts
its own at the next mount; this is for the others. Needs no key.

Options:
`

func runUploads(args []string) int {
	f := flag.NewFlagSet("uploads", flag.ContinueOnError)
	f.SetOutput(io.Discard)
	var s3 s3Options
	s3.add(f)
	abort := f.Bool("abort", false, "abort the uploads listed")
	older := f.Duration("older-than", 24*time.Hour, "only uploads started longer ago than this")
	pos, err := parseInterleaved(f, args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Print(uploadsUsage)
		printFlags(os.Stdout, f)
		return 0
	}
	if err == nil && len(pos) != 1 {
		err = errors.New("expected BUCKET[/PREFIX]")
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "ssecfs uploads: %v (see ssecfs uploads --help)\n", err)
		return 2
	}
	bucket, prefix, err := parseTarget(pos[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, "ssecfs uploads:", err)
		return 2
	}
	st, err := s3.store(bucket, nil, slog.New(slog.DiscardHandler), false)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ssecfs uploads:", err)
		return 1
	}
	ctx := context.Background()
	ups, err := st.ListUploads(ctx, prefix)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ssecfs uploads:", explain(err, fmt.Sprintf("bucket %q at %s", bucket, st.Endpoint()), s3.timeout))
		return 1
	}
	code := 0
	for _, u := range ups {
		age := time.Since(u.Initiated).Round(time.Second)
		if !*abort {
			fmt.Printf("%s\t%s\tstarted %s ago\n", u.Key, u.ID, age)
			continue
		}
		if age < *older {
			continue
		}
		if err := st.AbortMultipart(ctx, u.Key, u.ID); err != nil {
			fmt.Fprintf(os.Stderr, "ssecfs uploads: aborting %q: %v\n", u.Key, err)
			code = 1
			continue
		}
		fmt.Printf("aborted %s\t%s\n", u.Key, u.ID)
	}
	return code
}
