package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"
)

// Workload is one measured task. Prepare sets it up once per server
// (data every tool reads, the server's bucket); Run performs it once
// through a freshly mounted tool, with cold caches, and checks the result:
// bytes read, or objects written (encrypted, complete, the same bytes).
// What a workload needs from a tool beyond Tool is a small interface
// declared next to it.
type Workload interface {
	// Name is the row heading in the report.
	Name() string
	// Bytes is the amount of data one Run moves, for the MB/s figure.
	Bytes() int64
	// Files is the number of files one Run moves; above 1 the report
	// shows files/s.
	Files() int
	Prepare(ctx context.Context, t *Target) error
	Run(ctx context.Context, tool Tool) Outcome
	// Close removes local files the workload made.
	Close()
}

// seeder is a workload that needs data written through each tool itself
// before its timed runs (rsync compares against what the tool stored).
// Seed mounts the tool; the runner unmounts it afterwards.
type seeder interface {
	Seed(ctx context.Context, tool Tool) Outcome
}

// Status is how one run ended.
type Status string

const (
	OK        Status = "ok"
	Corrupt   Status = "CORRUPT"   // the bytes read or stored differ from those written
	Plaintext Status = "PLAINTEXT" // an object written was stored without SSE-C
	NotNoop   Status = "NOT-NOOP"  // an rsync that should change nothing changed something
	Timeout   Status = "TIMEOUT"
	Failed    Status = "FAILED" // an error: mount, read, write, download
	// NotApplicable: the tool cannot do this at all (the raw client has
	// no random reads); not a failure.
	NotApplicable Status = "n/a"
)

// Outcome is one run's result. Dur counts only for OK (and is kept for
// NotNoop, which ran to its end).
type Outcome struct {
	Status  Status
	Dur     time.Duration
	Err     error
	Changes int // NotNoop: the lines of changes reported
}

func failed(err error) Outcome { return Outcome{Status: Failed, Err: err} }

// checked turns the error of a check of written objects into an outcome.
func checked(err error) Outcome {
	switch {
	case errors.Is(err, errPlaintext):
		return Outcome{Status: Plaintext, Err: err}
	case errors.Is(err, errBytes):
		return Outcome{Status: Corrupt, Err: err}
	}
	return failed(err)
}

// lacks is the outcome for a tool without the interface a workload needs.
func lacks(tool Tool, what string) Outcome {
	if _, ok := tool.(reference); ok {
		return Outcome{Status: NotApplicable}
	}
	return failed(fmt.Errorf("%s cannot %s", tool.Name(), what))
}

// reference is a tool that stands beside the others on some workloads
// only (the raw client): on the others it is not applicable, not failed.
type reference interface{ reference() }

// ---------------------------------------------------------------------------
// Sequential read of one big object, read fully and hashed.

type seqRead struct {
	size     int64
	key      string
	local    string // the random bytes, uploaded by Prepare
	sum      [sha256.Size]byte
	uploaded map[string]bool // buckets it is in (the random reads read it too)
}

// newSeqRead writes size random bytes to a file in dir and hashes them.
func newSeqRead(dir string, size int64) (*seqRead, error) {
	w := &seqRead{size: size, key: fmt.Sprintf("seq-%d.bin", size), local: filepath.Join(dir, "object.bin"),
		uploaded: map[string]bool{}}
	f, err := os.Create(w.local)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var seed [32]byte
	for i := range seed {
		seed[i] = byte(rand.Uint32())
	}
	// ChaCha8 is fast and incompressible; the data need not be secret.
	src := rand.NewChaCha8(seed)
	h := sha256.New()
	bw := bufio.NewWriterSize(io.MultiWriter(f, h), 1<<20)
	if _, err := io.CopyN(bw, src, size); err != nil {
		return nil, err
	}
	if err := bw.Flush(); err != nil {
		return nil, err
	}
	h.Sum(w.sum[:0])
	return w, f.Close()
}

func (w *seqRead) Name() string { return "cold read " + formatSize(w.size) }

func (w *seqRead) Bytes() int64 { return w.size }

func (w *seqRead) Files() int { return 1 }

// pathReader is what the cold read needs from a tool.
type pathReader interface {
	// ReadPath returns a local path that holds the bytes of object key:
	// for a mount the path inside it; the raw client downloads the object
	// first, and that download is part of the measured time.
	ReadPath(ctx context.Context, key string) (string, error)
}

// Prepare uploads the object with the raw client, SSE-C with the target's
// secret, as users' data gets there.
func (w *seqRead) Prepare(ctx context.Context, t *Target) error {
	if w.uploaded[t.Bucket] {
		return nil
	}
	args := append([]string{"s3", "cp", "--only-show-errors"}, sseArgs(t.Secret)...)
	_, err := runAWS(ctx, t.Server, append(args, w.local, "s3://"+t.Bucket+"/"+w.key)...)
	w.uploaded[t.Bucket] = err == nil
	return err
}

// Run reads the object from start to end, as cat FILE > /dev/null does
// (128 KiB reads). The time runs from asking the tool for the path to the
// last byte: for the raw client that includes its download. The bytes are
// hashed after the clock stops, by reading the same open file again (from
// the page cache the timed read filled, or from the tool if it dropped
// them): hashing a GiB costs most of a CPU-second on the cores the tool and
// the server share, the same for every tool, and it would narrow every gap.
func (w *seqRead) Run(ctx context.Context, tool Tool) Outcome {
	if mr, ok := tool.(memReader); ok {
		return w.runMem(ctx, mr)
	}
	pr, ok := tool.(pathReader)
	if !ok {
		return lacks(tool, "read a path")
	}
	sw := watchOf(ctx)
	sw.start(ctx)
	path, err := pr.ReadPath(ctx, w.key)
	if err != nil {
		return failed(err)
	}
	f, err := os.Open(path)
	if err != nil {
		return failed(err)
	}
	defer f.Close()
	n, err := readAll(ctx, f)
	dur := sw.stop(ctx)
	if err != nil {
		return failed(fmt.Errorf("read after %d bytes: %w", n, err))
	}
	h := sha256.New()
	m, err := io.CopyBuffer(h, ctxReader{ctx, io.NewSectionReader(f, 0, w.size+1)}, make([]byte, 1<<20))
	switch {
	case err != nil:
		return failed(fmt.Errorf("read again to check, after %d bytes: %w", m, err))
	case n != w.size || m != w.size:
		return Outcome{Status: Corrupt, Err: fmt.Errorf("%d bytes read (%d when read again), %d written", n, m, w.size)}
	case [sha256.Size]byte(h.Sum(nil)) != w.sum:
		return Outcome{Status: Corrupt, Err: fmt.Errorf("sha256 %s, want %s",
			hex.EncodeToString(h.Sum(nil)), hex.EncodeToString(w.sum[:]))}
	}
	return Outcome{Status: OK, Dur: dur}
}

// runMem times the raw client's read of the object into memory, then
// checks its bytes.
func (w *seqRead) runMem(ctx context.Context, mr memReader) Outcome {
	sw := watchOf(ctx)
	sw.start(ctx)
	buf, err := mr.ReadMem(ctx, w.key, w.size)
	dur := sw.stop(ctx)
	switch {
	case err != nil:
		return failed(err)
	case int64(len(buf)) != w.size:
		return Outcome{Status: Corrupt, Err: fmt.Errorf("%d bytes read, %d written", len(buf), w.size)}
	case sha256.Sum256(buf) != w.sum:
		return Outcome{Status: Corrupt, Err: errBytes}
	}
	return Outcome{Status: OK, Dur: dur}
}

// readAll reads r to its end in 128 KiB reads, as cat does, and counts the
// bytes. (io.Copy to io.Discard would read 8 KiB at a time.)
func readAll(ctx context.Context, r io.Reader) (int64, error) {
	buf := make([]byte, 128<<10)
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		m, err := r.Read(buf)
		n += int64(m)
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

func (w *seqRead) Close() { os.Remove(w.local) }

// ctxReader stops a long read between two reads once ctx is done; a read
// stuck inside the kernel is ended by killing the daemon instead.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
