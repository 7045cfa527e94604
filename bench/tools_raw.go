package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"runtime/debug"
	"strings"

	"github.com/minio/minio-go/v7"
	"golang.org/x/sync/errgroup"
)

// rawClient is the physical reference beside the tools: the bench's own
// Go client (minio-go) straight from and to memory, with no FUSE, no
// files and no program: a read is rawParts ranged GETs at a time into
// one buffer, a write one multipart PUT of the buffer with rawParts parts
// at a time, a listing the server's pages. What a tool does beyond this
// is its own cost; what the server and the network cost is here too.
type rawClient struct{ t *Target }

const (
	rawParts    = 8        // requests in flight
	rawPartSize = 16 << 20 // bytes per ranged GET and per part
)

func newRawClient() Tool { return &rawClient{} }

func (r *rawClient) Name() string { return "raw Go client" }

func (r *rawClient) Version(ctx context.Context) string {
	v := "minio-go"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/minio/minio-go/v7" {
				v += " " + d.Version
			}
		}
	}
	return fmt.Sprintf("%s, %d requests of %d MiB at a time, from and to memory", v, rawParts, rawPartSize>>20)
}

func (r *rawClient) Setup(ctx context.Context, t *Target) error      { r.t = t; return nil }
func (r *rawClient) Mount(ctx context.Context) error                 { return nil }
func (r *rawClient) Durable(context.Context, map[string]int64) error { return nil }
func (r *rawClient) PeakRSS() int64                                  { return 0 }
func (r *rawClient) Unmount(ctx context.Context) error               { return nil }
func (r *rawClient) reference()                                      {}

// memReader is what the cold read needs from the raw client.
type memReader interface {
	// ReadMem returns the size bytes of object key.
	ReadMem(ctx context.Context, key string, size int64) ([]byte, error)
}

// memWriter is what the big write needs from the raw client.
type memWriter interface {
	// WriteMem stores data as object key; Tool.Durable follows.
	WriteMem(ctx context.Context, data []byte, key string) error
}

func (r *rawClient) ReadMem(ctx context.Context, key string, size int64) ([]byte, error) {
	o := r.t.S3
	buf := make([]byte, size)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(rawParts)
	for off := int64(0); off < size; off += rawPartSize {
		end := min(off+rawPartSize, size)
		g.Go(func() error {
			opts := minio.GetObjectOptions{ServerSideEncryption: o.sse}
			if err := opts.SetRange(off, end-1); err != nil {
				return err
			}
			obj, err := o.c.GetObject(gctx, o.bucket, key, opts)
			if err != nil {
				return err
			}
			defer obj.Close()
			if _, err := io.ReadFull(obj, buf[off:end]); err != nil {
				return fmt.Errorf("bytes %d-%d: %w", off, end-1, err)
			}
			return nil
		})
	}
	return buf, g.Wait()
}

func (r *rawClient) WriteMem(ctx context.Context, data []byte, key string) error {
	o := r.t.S3
	_, err := o.c.PutObject(ctx, o.bucket, key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{
		ServerSideEncryption: o.sse, PartSize: rawPartSize, NumThreads: rawParts,
	})
	return err
}

// ListLong lists the folder prefix with sizes, as ls -l shows it.
func (r *rawClient) ListLong(ctx context.Context, prefix string) ([]string, error) {
	return r.list(ctx, prefix, false)
}

// Find lists every object under prefix.
func (r *rawClient) Find(ctx context.Context, prefix string) ([]string, error) {
	return r.list(ctx, prefix, true)
}

func (r *rawClient) list(ctx context.Context, prefix string, recursive bool) ([]string, error) {
	o := r.t.S3
	var out []string
	for obj := range o.c.ListObjects(ctx, o.bucket, minio.ListObjectsOptions{Prefix: prefix + "/", Recursive: recursive}) {
		if obj.Err != nil {
			return out, obj.Err
		}
		if strings.HasSuffix(obj.Key, "/") {
			out = append(out, obj.Key)
			continue
		}
		out = append(out, fmt.Sprintf("%d %s", obj.Size, obj.Key))
	}
	return out, nil
}
