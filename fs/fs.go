// Package fs is the filesystem: a go-fuse node tree where directories are
// key prefixes and files are objects. It is the only importer of go-fuse.
//
// Design rules:
//   - Directory contents come from listings (cached for MetaTTL); file
//     attributes beyond size come from keyed HEADs, fetched lazily and in
//     parallel (meta.go), or from listings with metadata where the server
//     gives them (MinIO, metalist.go).
//   - File data is read through the block cache, pinned to the ETag seen at
//     open; a change underneath surfaces as ESTALE, never as mixed bytes.
//   - Every error becomes an errno in toErrno (errno.go) and nowhere else.
package fs

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/ssecfs/ssecfs/cache"
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
	// known as such, and refuses to open them (plain.go).
	RefusePlaintext bool
}

// FS is the filesystem of one mount.
type FS struct {
	opts    Options
	log     *slog.Logger
	meta    *metaCache
	started time.Time
	root    *Dir
	stage   *stage.Manager // nil: read-only
	copier  *store.Copier
	// filesSem bounds the small files fetched ahead (Dir.filesAhead).
	filesSem chan struct{}
	lists    *listsAhead
	// changes counts the changes this mount made to the bucket, the
	// stage's uploads and deletes included (Store); listings made ahead
	// are used only if none came after them.
	changes atomic.Uint64
	// walked is the last listing a program read (readdir) that holds
	// files: whether they were stat'ed decides how folders are listed
	// (metalist.go).
	walked atomic.Pointer[listing]

	warnMu sync.Mutex
	warned map[string]bool // keys already warned about; guarded by warnMu
	// plainSeen counts the plaintext objects met (plain.go).
	plainSeen atomic.Int64
}

// New builds the filesystem. Nothing is sent until the kernel asks.
func New(o Options) *FS {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.HeadParallel <= 0 {
		o.HeadParallel = 32
	}
	if o.MetaAhead <= 0 {
		o.MetaAhead = 512
	}
	if o.MaxRenameObjects <= 0 {
		o.MaxRenameObjects = 1000
	}
	f := &FS{
		log:      o.Log,
		started:  time.Now(),
		warned:   map[string]bool{},
		filesSem: make(chan struct{}, 16),
		lists:    newListsAhead(),
	}
	o.Store = changeCounter{Store: o.Store, n: &f.changes}
	f.opts = o
	f.meta = newMetaCache(o.Store, o.MetaTTL, o.HeadParallel, 200_000)
	f.copier = store.NewCopier(o.Store, o.Log)
	f.root = f.newDir(o.Prefix)
	return f
}

// Store is the store the mount changes the bucket through, counting the
// changes: the stage must be given this one.
func (f *FS) Store() store.Store { return f.opts.Store }

// changeCounter counts the calls that change the bucket, once they are done.
type changeCounter struct {
	store.Store
	n *atomic.Uint64
}

func (c changeCounter) Put(ctx context.Context, key string, body io.Reader, size int64, meta map[string]string) (string, error) {
	defer c.n.Add(1)
	return c.Store.Put(ctx, key, body, size, meta)
}

func (c changeCounter) CompleteMultipart(ctx context.Context, key, uploadID string, parts []store.Part) error {
	defer c.n.Add(1)
	return c.Store.CompleteMultipart(ctx, key, uploadID, parts)
}

func (c changeCounter) Copy(ctx context.Context, src, dst string, srcPlain bool, meta map[string]string) error {
	defer c.n.Add(1)
	return c.Store.Copy(ctx, src, dst, srcPlain, meta)
}

func (c changeCounter) Delete(ctx context.Context, key string) error {
	defer c.n.Add(1)
	return c.Store.Delete(ctx, key)
}

// fetcher reads blocks of one version of an object for the cache.
func (f *FS) fetcher(key string, a store.Attrs) cache.Fetch {
	etag, plain := a.ETag, a.Encryption == store.EncPlain
	return func(ctx context.Context, off int64, buf []byte) error {
		_, err := f.opts.Store.ReadRange(ctx, key, store.Range{Offset: off, IfMatch: etag, Plaintext: plain}, buf)
		return err
	}
}

// SetStage enables writing: changes go through m. Call before Mount.
func (f *FS) SetStage(m *stage.Manager) { f.stage = m }

func (f *FS) newDir(prefix string) *Dir { return &Dir{fsys: f, prefix: prefix} }

// Uploaded learns that key reached the bucket: the HEAD that proved it
// answers the next stat, and the parent's listing shows it.
func (f *FS) Uploaded(key string, a store.Attrs) {
	f.meta.put(key, a)
	if d, name := f.parentOf(key); d != nil {
		d.patch(name, &child{obj: store.Entry{Key: key, Size: a.Size, ETag: a.ETag, LastModified: a.LastModified}})
	}
}

// Removed learns that the stage deleted key (a file's old name, once the
// file was uploaded under its new one): the next stat asks the server,
// and the parent's listing drops it, one on its way included (a listing
// the server answered before the delete would show it until the TTL).
func (f *FS) Removed(key string) {
	f.meta.forget(key)
	if d, name := f.parentOf(key); d != nil {
		d.patch(name, nil)
	}
}

// parentOf finds the loaded directory node holding key, if any.
func (f *FS) parentOf(key string) (*Dir, string) {
	rest, ok := strings.CutPrefix(key, f.opts.Prefix)
	if !ok {
		return nil, ""
	}
	d := f.root
	for {
		i := strings.IndexByte(rest, '/')
		if i < 0 {
			return d, rest
		}
		ch := d.GetChild(rest[:i])
		if ch == nil {
			return nil, ""
		}
		sub, ok := ch.Operations().(*Dir)
		if !ok {
			return nil, ""
		}
		d, rest = sub, rest[i+1:]
	}
}

// warnOnce logs a problem with an object once per mount, however often the
// kernel asks about it.
func (f *FS) warnOnce(key, msg string, args ...any) {
	f.warnMu.Lock()
	seen := f.warned[key+"\x00"+msg]
	f.warned[key+"\x00"+msg] = true
	f.warnMu.Unlock()
	if !seen {
		f.log.Warn(msg, append([]any{"key", key}, args...)...)
	}
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
