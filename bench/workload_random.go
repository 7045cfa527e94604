package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
)

// Random 4 KiB reads at scattered offsets of the big object, one after
// another, as a database or an archive index reads: the cost is a round
// trip per read, and what a tool fetches beyond the 4 KiB asked for.

const (
	randomReads    = 500
	randomReadSize = 4 << 10
)

type randomRead struct {
	big     *seqRead
	offsets []int64 // the same for every tool and run
}

func newRandomRead(big *seqRead) *randomRead {
	w := &randomRead{big: big}
	// A fixed seed: every tool reads the same offsets, which are far
	// apart enough (4 KiB-aligned in the whole object) that a tool gains
	// nothing from an earlier read but what it fetched around it.
	r := rand.New(rand.NewPCG(1, 2))
	for range randomReads {
		w.offsets = append(w.offsets, r.Int64N(big.size/randomReadSize)*randomReadSize)
	}
	return w
}

func (w *randomRead) Name() string {
	return fmt.Sprintf("random 4 KiB reads ×%d in %s", randomReads, formatSize(w.big.size))
}
func (w *randomRead) Bytes() int64 { return randomReads * randomReadSize }
func (w *randomRead) Files() int   { return 1 }
func (w *randomRead) Close()       {}

// Prepare uploads the object, unless the cold read did.
func (w *randomRead) Prepare(ctx context.Context, t *Target) error { return w.big.Prepare(ctx, t) }

// Run opens the object in the mount and reads 4 KiB at each offset with
// pread, then compares every read with the local copy (untimed). The raw
// client has no way to read a part of an object short of a ranged GET per
// read, which aws s3 does not offer: its cell is n/a.
func (w *randomRead) Run(ctx context.Context, tool Tool) Outcome {
	m, ok := tool.(mounted)
	if !ok {
		return Outcome{Status: NotApplicable}
	}
	got := make([]byte, randomReads*randomReadSize)
	sw := watchOf(ctx)
	sw.start(ctx)
	f, err := os.Open(m.Path(w.big.key))
	if err != nil {
		return failed(err)
	}
	defer f.Close()
	for i, off := range w.offsets {
		if err := ctx.Err(); err != nil {
			return failed(err)
		}
		p := got[i*randomReadSize : (i+1)*randomReadSize]
		if n, err := f.ReadAt(p, off); n != len(p) {
			return failed(fmt.Errorf("read at %d: %d bytes: %v", off, n, err))
		}
	}
	dur := sw.stop(ctx)
	local, err := os.Open(w.big.local)
	if err != nil {
		return failed(err)
	}
	defer local.Close()
	want := make([]byte, randomReadSize)
	for i, off := range w.offsets {
		if _, err := local.ReadAt(want, off); err != nil {
			return failed(err)
		}
		if !bytes.Equal(got[i*randomReadSize:(i+1)*randomReadSize], want) {
			return Outcome{Status: Corrupt, Err: fmt.Errorf("4 KiB at %d differ", off)}
		}
	}
	return Outcome{Status: OK, Dur: dur}
}
