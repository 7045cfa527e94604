// Package fs is the filesystem's go-fuse front end: Dir, File and Link
// nodes over the namespace (package ns), open files reading through the
// block cache or writing through the stage, and the one mapping of errors
// to errno values. It is the only importer of go-fuse.
//
// Design rules:
//   - What exists and what a stat shows come from the namespace; a node
//     holds its key (and a folder its ns.Folder) and nothing the namespace
//     knows.
//   - File data is read through the block cache, pinned to the ETag seen at
//     open; a change underneath surfaces as ESTALE, never as mixed bytes.
//   - Every error becomes an errno in toErrno (errno.go) and nowhere else.
package fs

import (
	"context"
	"log/slog"
	"sync/atomic"
	"syscall"
	"time"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/ssecfs/ssecfs/cache"
	"github.com/ssecfs/ssecfs/metadisk"
	"github.com/ssecfs/ssecfs/ns"
	"github.com/ssecfs/ssecfs/stage"
	"github.com/ssecfs/ssecfs/store"
)

// Options configure the filesystem.
type Options struct {
	Store  store.Store
	Cache  *cache.Cache
	Log    *slog.Logger
	Prefix string // key prefix shown as the root: "" or ending in "/"
	// MetaTTL is how long listings and HEAD answers are trusted; changes
	// made by other clients show after at most this long.
	MetaTTL time.Duration
	// ReadAhead is the most a sequential reader fetches ahead, in bytes.
	ReadAhead int64
	// HeadParallel bounds concurrent HEADs.
	HeadParallel int
	// MetaAhead is how many entries after a stat'ed file get their HEAD
	// started, so that `ls -l` runs in parallel.
	MetaAhead int
	UID, GID  uint32
	// OwnerFromMeta shows x-amz-meta-uid/gid as the owner instead of UID/GID.
	OwnerFromMeta bool
	// MaxRenameObjects bounds a folder rename, which copies every object:
	// past it, rename answers EXDEV and mv copies file by file instead.
	MaxRenameObjects int
	// RefusePlaintext hides objects stored without SSE-C once they are
	// known as such, and refuses to open them (ns/plain.go).
	RefusePlaintext bool
	// Journal makes the mount writable: the stage is opened with it
	// (ns.Options.Journal). Nil mounts read-only.
	Journal *stage.Config
	// Known keeps objects' metadata between mounts (ns.Options.Known).
	Known *metadisk.Disk
}

// FS is the filesystem of one mount.
type FS struct {
	opts  Options
	log   *slog.Logger
	ns    *ns.Namespace
	stage *stage.Manager // nil: read-only
	root  *Dir
	// filesSem bounds the small files fetched ahead (Dir.filesAhead).
	filesSem chan struct{}
	// read and written count the bytes programs read and wrote (IO).
	read, written atomic.Int64
}

// New builds the filesystem and, with a journal, opens its stage. Nothing
// is sent until the kernel asks.
func New(o Options) (*FS, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	n, err := ns.New(ns.Options{
		Store: o.Store, Log: o.Log, Prefix: o.Prefix, MetaTTL: o.MetaTTL,
		HeadParallel: o.HeadParallel, MetaAhead: o.MetaAhead, MaxRenameObjects: o.MaxRenameObjects,
		RefusePlaintext: o.RefusePlaintext, Journal: o.Journal, Known: o.Known,
	})
	if err != nil {
		return nil, err
	}
	f := &FS{opts: o, log: o.Log, ns: n, stage: n.Stage(), filesSem: make(chan struct{}, 16)}
	f.root = f.newDir(n.Root())
	return f, nil
}

// Stage is the write-back stage, nil on a read-only mount.
func (f *FS) Stage() *stage.Manager { return f.stage }

// Close closes the stage; what waits stays in the journal.
func (f *FS) Close() { f.ns.Close() }

// IO is the bytes programs read from and wrote to the mount.
func (f *FS) IO() (read, written int64) { return f.read.Load(), f.written.Load() }

// PlaintextSeen is how many objects stored without SSE-C the mount has met.
func (f *FS) PlaintextSeen() int64 { return f.ns.PlaintextSeen() }

func (f *FS) newDir(d *ns.Folder) *Dir { return &Dir{fsys: f, f: d} }

// fetcher reads blocks of one version of an object for the cache.
func (f *FS) fetcher(key string, a store.Attrs) cache.Fetch {
	etag, plain := a.ETag, a.Encryption == store.EncPlain
	st := f.ns.Store()
	return func(ctx context.Context, off int64, buf []byte) error {
		_, err := st.ReadRange(ctx, key, store.Range{Offset: off, IfMatch: etag, Plaintext: plain}, buf)
		return err
	}
}

// caller is the uid and gid of the program making the request.
func caller(ctx context.Context) ns.Owner {
	if c, ok := fuse.FromContext(ctx); ok {
		return ns.Owner{UID: c.Uid, GID: c.Gid}
	}
	return ns.Owner{}
}

var _ = (fusefs.NodeStatfser)((*Dir)(nil))

// Statfs reports a large, mostly free filesystem: a bucket has no size, and
// programs that check free space before copying (desktop file managers,
// backup tools) must not refuse.
func (d *Dir) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	const blocks = 1 << 40 // 4 PiB of 4 KiB blocks
	out.Bsize = 4096
	out.Frsize = 4096
	out.Blocks = blocks
	out.Bfree = blocks
	out.Bavail = blocks
	out.Files = 1 << 40
	out.Ffree = 1 << 40
	out.NameLen = 255
	return 0
}
