// Package ns is the namespace of a mount: which names exist under a key
// prefix and what a stat of each shows. It merges the bucket's listings
// with the files waiting in the stage, keeps listing snapshots patched by
// this mount's own changes, caches HEAD answers, fetches listings and
// HEADs ahead of programs that walk a tree, and makes the bucket side of
// mkdir, unlink, rmdir, symlink and rename. It knows nothing of FUSE: the
// fs package is a thin go-fuse front end over it.
//
// Design rules:
//   - Folder contents come from listings (cached for MetaTTL); file
//     attributes beyond size come from keyed HEADs, fetched lazily and in
//     parallel (meta.go), or from listings with metadata where the server
//     gives them (MinIO, metalist.go).
//   - A snapshot never contradicts what this mount did: changes are
//     patched into it, and replayed onto a listing that was on its way
//     (folder.go); a listing made ahead is used only if this mount changed
//     nothing since it was sent (listahead.go).
//
// Lock order (docs/ARCHITECTURE.md): the front end's node locks, then
// Folder.listMu, then Folder.mu, then metaCache.mu; Namespace.foldersMu
// comes before Folder.mu (a folder rename moves folders) and is never held
// with listMu; the listings ahead's lock is taken last, nothing under it.
// The stage's locks are never held across a call into this
// package, nor these across a call into the stage.
package ns

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"weak"

	"github.com/ssecfs/ssecfs/metadisk"
	"github.com/ssecfs/ssecfs/stage"
	"github.com/ssecfs/ssecfs/store"
)

// Options configure the namespace.
type Options struct {
	Store  store.Store
	Log    *slog.Logger
	Prefix string // key prefix shown as the root: "" or ending in "/"
	// MetaTTL is how long listings and HEAD answers are trusted; changes
	// made by other clients show after at most this long.
	MetaTTL time.Duration
	// HeadParallel bounds concurrent HEADs.
	HeadParallel int
	// MetaAhead is how many entries after a stat'ed file get their HEAD
	// started, so that `ls -l` runs in parallel.
	MetaAhead int
	// MaxRenameObjects bounds a folder rename, which copies every object:
	// past it, RenameDir answers ErrTooBig and mv copies file by file.
	MaxRenameObjects int
	// RefusePlaintext hides objects stored without SSE-C once they are
	// known as such, and refuses to open them (plain.go).
	RefusePlaintext bool
	// Journal, if set, makes the mount writable: the stage is opened with
	// it, given the namespace's counting store and its notices (Store,
	// Uploaded and Removed are filled in here).
	Journal *stage.Config
	// Known, if set, keeps what HEADs and listings with metadata taught
	// on disk, for the next mount (known.go).
	Known *metadisk.Disk
}

// Namespace is the namespace of one mount.
type Namespace struct {
	opts    Options
	log     *slog.Logger
	meta    *metaCache
	started time.Time
	stage   *stage.Manager // nil: read-only
	copier  *store.Copier
	lists   *listsAhead
	// changes counts the changes this mount made to the bucket, the
	// stage's uploads and deletes included (Store); listings made ahead
	// are used only if none came after them.
	changes atomic.Uint64
	// link is the store's connection state, if it has one (store.S3).
	link *store.Link
	// walked is the last listing a program read that holds files: whether
	// they were stat'ed decides how folders are listed (metalist.go).
	walked atomic.Pointer[listing]

	warnMu sync.Mutex
	warned map[string]bool // keys already warned about; guarded by warnMu
	// plainSeen counts the plaintext objects met (plain.go).
	plainSeen atomic.Int64

	// folders are the folders loaded, by prefix, for the stage's notices
	// and folder renames; a folder nobody holds any more drops out.
	foldersMu sync.Mutex
	folders   map[string]weak.Pointer[Folder] // guarded by foldersMu
	sweptAt   int                             // len(folders) after the last sweep; guarded by foldersMu

	// dirty are the folders that learnt what Options.Known should keep;
	// stopSave ends the loop saving them, which closes saved.
	knownMu  sync.Mutex
	dirty    map[*Folder]bool // guarded by knownMu
	stopSave chan struct{}
	saved    chan struct{}
}

// New builds the namespace and, with o.Journal, opens the stage. Nothing
// is sent to the bucket until asked.
func New(o Options) (*Namespace, error) {
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
	n := &Namespace{
		log:     o.Log,
		started: time.Now(),
		warned:  map[string]bool{},
		lists:   newListsAhead(),
		folders: map[string]weak.Pointer[Folder]{},
		dirty:   map[*Folder]bool{},
	}
	if l, ok := o.Store.(interface{ Link() *store.Link }); ok {
		n.link = l.Link()
	}
	o.Store = changeCounter{Store: o.Store, n: &n.changes, reached: n.reached}
	n.meta = newMetaCache(o.Store, o.MetaTTL, o.HeadParallel, 200_000, n.offline)
	n.meta.listed, n.meta.learnt = n.listedVersion, n.learntKey
	n.copier = store.NewCopier(o.Store, o.Log)
	if o.Journal != nil {
		cfg := *o.Journal
		cfg.Store, cfg.Uploaded, cfg.Removed = o.Store, n.uploaded, n.removed
		if cfg.Log == nil {
			cfg.Log = o.Log
		}
		m, err := stage.Open(cfg)
		if err != nil {
			return nil, err
		}
		n.stage = m
	}
	o.Journal = nil
	n.opts = o
	if o.Known != nil {
		n.stopSave, n.saved = make(chan struct{}), make(chan struct{})
		go n.saveLoop(n.stopSave, n.saved)
	}
	return n, nil
}

// Close closes the stage, if any, and saves what was learnt. What waits
// stays in the journal.
func (n *Namespace) Close() {
	if n.stage != nil {
		n.stage.Close()
	}
	if n.stopSave != nil {
		close(n.stopSave)
		<-n.saved
		n.stopSave = nil
	}
}

// Stage is the write-back stage, nil on a read-only mount.
func (n *Namespace) Stage() *stage.Manager { return n.stage }

// Store is the store the mount changes the bucket through, counting the
// changes.
func (n *Namespace) Store() store.Store { return n.opts.Store }

// Started is when the mount began: the time folders without a marker show.
func (n *Namespace) Started() time.Time { return n.started }

// Root is the folder shown at the mountpoint.
func (n *Namespace) Root() *Folder { return n.Folder(n.opts.Prefix) }

// Folder returns the folder of prefix ("" or ending in "/"), the loaded
// one if any: one Folder per prefix, so that the stage's notices and a
// folder rename reach the snapshot every holder reads.
func (n *Namespace) Folder(prefix string) *Folder {
	n.foldersMu.Lock()
	defer n.foldersMu.Unlock()
	if d := n.folders[prefix].Value(); d != nil {
		return d
	}
	d := &Folder{ns: n, prefix: prefix}
	n.folders[prefix] = weak.Make(d)
	if len(n.folders) > 2*n.sweptAt+64 {
		for p, w := range n.folders {
			if w.Value() == nil {
				delete(n.folders, p)
			}
		}
		n.sweptAt = len(n.folders)
	}
	return d
}

// loaded returns the folder of prefix if one is held, else nil.
func (n *Namespace) loaded(prefix string) *Folder {
	n.foldersMu.Lock()
	defer n.foldersMu.Unlock()
	return n.folders[prefix].Value()
}

// parentOf returns the loaded folder holding key and key's name in it.
func (n *Namespace) parentOf(key string) (*Folder, string) {
	dir, name := splitKey(key)
	return n.loaded(dir), name
}

// splitKey splits a key into its folder's prefix and its name.
func splitKey(key string) (string, string) {
	i := strings.LastIndexByte(key, '/')
	return key[:i+1], key[i+1:]
}

// rekey moves the loaded folders under from (from included) to to, their
// snapshots dropped: a folder rename.
func (n *Namespace) rekey(from, to string) {
	n.foldersMu.Lock()
	defer n.foldersMu.Unlock()
	var moved []*Folder
	for p, w := range n.folders {
		if strings.HasPrefix(p, from) {
			delete(n.folders, p)
			if d := w.Value(); d != nil {
				moved = append(moved, d)
			}
		}
	}
	for _, d := range moved {
		d.mu.Lock()
		d.prefix = to + strings.TrimPrefix(d.prefix, from)
		d.list = nil
		n.folders[d.prefix] = weak.Make(d)
		d.mu.Unlock()
	}
}

// uploaded learns that key reached the bucket: the HEAD that proved it
// answers the next stat, and the parent's listing shows it.
func (n *Namespace) uploaded(key string, a store.Attrs) {
	n.meta.put(key, a)
	if d, name := n.parentOf(key); d != nil {
		d.patch(name, &Entry{Object: store.Entry{Key: key, Size: a.Size, ETag: a.ETag, LastModified: a.LastModified}})
	}
}

// removed learns that the stage deleted key (a file's old name, once the
// file was uploaded under its new one): the next stat asks the server,
// and the parent's listing drops it, one on its way included (a listing
// the server answered before the delete would show it until the TTL).
func (n *Namespace) removed(key string) {
	n.meta.forget(key)
	if d, name := n.parentOf(key); d != nil {
		d.patch(name, nil)
	}
}

// offline says err means the server is out of reach: refused while
// offline, or the failure that found it gone (no answer at all; a server
// answering 5xx is not offline). Listings and stats then answer from what
// the mount last knew.
func (n *Namespace) offline(err error) bool {
	if errors.Is(err, store.ErrOffline) {
		return true
	}
	since, _ := n.link.Offline()
	return errors.Is(err, store.ErrUnavailable) && !since.IsZero()
}

// WarnOnce logs a problem with an object once per mount, however often it
// is asked about.
func (n *Namespace) WarnOnce(key, msg string, args ...any) {
	n.warnMu.Lock()
	seen := n.warned[key+"\x00"+msg]
	n.warned[key+"\x00"+msg] = true
	n.warnMu.Unlock()
	if !seen {
		n.log.Warn(msg, append([]any{"key", key}, args...)...)
	}
}

// changeCounter counts the calls that change the bucket, once they are
// done, and tells the stage when a listing or a HEAD succeeds: uploads
// waiting out a network failure are tried again at once.
type changeCounter struct {
	store.Store
	n       *atomic.Uint64
	reached func()
}

func (c changeCounter) List(ctx context.Context, prefix string, opts store.ListOptions, fn func(store.Entry) error) error {
	err := c.Store.List(ctx, prefix, opts, fn)
	if err == nil {
		c.reached()
	}
	return err
}

func (c changeCounter) Head(ctx context.Context, key string) (store.Attrs, error) {
	a, err := c.Store.Head(ctx, key)
	if err == nil || errors.Is(err, store.ErrNotFound) {
		c.reached()
	}
	return a, err
}

// reached tells the stage the server answers.
func (n *Namespace) reached() {
	if n.stage != nil {
		n.stage.Reached()
	}
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
