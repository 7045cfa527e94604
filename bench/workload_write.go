package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"os"
)

// ---------------------------------------------------------------------------
// Write of one big file, until it is durable in the bucket.

// fileWriter is what the big write needs from a tool.
type fileWriter interface {
	// WriteFile copies the local file src to the object key, as cp does
	// (for the raw client: aws s3 cp). Tool.Durable follows.
	WriteFile(ctx context.Context, src, key string) error
}

// bigWrite writes the random file of the cold read (same size, same
// bytes) to a new object per run.
type bigWrite struct {
	src  *seqRead
	s3   *objStore
	data []byte // the source in memory, for the raw client; read once, before its clock starts
}

func (w *bigWrite) Name() string { return "write " + formatSize(w.src.size) }

func (w *bigWrite) Bytes() int64 { return w.src.size }

func (w *bigWrite) Files() int { return 1 }

func (w *bigWrite) Prepare(ctx context.Context, t *Target) error { w.s3 = t.S3; return nil }

// Run times the copy and Durable (sync, unmount, and for rclone's VFS
// cache the wait for its upload), then checks the object: SSE-C, full
// size, and the SHA-256 of its bytes downloaded with the key. The object
// is removed afterwards.
func (w *bigWrite) Run(ctx context.Context, tool Tool) Outcome {
	fw, ok := tool.(fileWriter)
	if _, inMem := tool.(memWriter); !ok && !inMem {
		return lacks(tool, "write a file")
	}
	key := fmt.Sprintf("write-%s-%s.bin", slug(tool.Name()), randomString(6))
	want := map[string]int64{key: w.src.size}
	defer w.s3.remove(context.WithoutCancel(ctx), key)
	mw, inMem := tool.(memWriter)
	if inMem && w.data == nil {
		var err error
		if w.data, err = os.ReadFile(w.src.local); err != nil {
			return failed(err)
		}
	}
	sw := watchOf(ctx)
	sw.start(ctx)
	if inMem {
		if err := mw.WriteMem(ctx, w.data, key); err != nil {
			return failed(err)
		}
	} else if err := fw.WriteFile(ctx, w.src.local, key); err != nil {
		return failed(err)
	}
	if err := tool.Durable(ctx, want); err != nil {
		return failed(fmt.Errorf("until durable: %w", err))
	}
	dur := sw.stop(ctx)
	if err := w.s3.checkEncrypted(ctx, want); err != nil {
		return checked(err)
	}
	sum, err := w.s3.sha256Of(ctx, key)
	switch {
	case err != nil:
		return failed(fmt.Errorf("downloading %s: %w", key, err))
	case sum != w.src.sum:
		return Outcome{Status: Corrupt, Err: fmt.Errorf("%s: sha256 %s, want %s", key,
			hex.EncodeToString(sum[:]), hex.EncodeToString(w.src.sum[:]))}
	}
	return Outcome{Status: OK, Dur: dur}
}

func (w *bigWrite) Close() { w.data = nil }
