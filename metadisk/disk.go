// Package metadisk keeps what a mount learnt of its objects' metadata
// (the answers of keyed HEADs, and of listings with metadata) on local
// disk between mounts, one file per folder, so that a fresh mount walking
// an unchanged tree need not HEAD every file again.
//
// A record is only as good as the version of the object it describes: it
// carries the ETag, size and LastModified that a plain listing showed for
// that version, and the namespace uses it only while a listing still shows
// the very same three (a copy onto itself after chmod keeps size and ETag
// on both servers, but not LastModified, which listings give to the
// millisecond). This package keeps and checks the files; the namespace
// (package ns) decides what goes in and when a record applies.
//
// Every file is sealed with AES-256-GCM under a key derived from the SSE-C
// key and the mount's scope (keys.Key.MetadataKey), bound to its folder by
// the associated data, and named by a keyed hash of the folder: the disk
// shows neither names nor metadata. A file that does not open (written
// under another key, torn by a crash, altered) is logged, removed and
// rebuilt; it is never half-used.
package metadisk

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ssecfs/ssecfs/store"
)

// Version is an object's version as a plain listing shows it.
type Version struct {
	ETag         string
	Size         int64
	LastModified time.Time
}

// VersionOf is the version a listing entry shows.
func VersionOf(e store.Entry) Version {
	return Version{ETag: e.ETag, Size: e.Size, LastModified: e.LastModified}
}

// Equal compares two versions to the nanosecond, whatever their locations.
func (v Version) Equal(w Version) bool {
	return v.ETag == w.ETag && v.Size == w.Size && v.LastModified.Equal(w.LastModified)
}

// Record is what is known of one object of a folder, valid while a listing
// shows Ver.
type Record struct {
	Name  string // the object's name in its folder
	Ver   Version
	Attrs store.Attrs
}

// Options configure a Disk.
type Options struct {
	// Dir is the folder of one mount scope (endpoint, bucket, prefix).
	Dir string
	// Key is the 32-byte key the files are sealed with.
	Key []byte
	// Scope binds the files to the mount's endpoint, bucket and prefix.
	Scope string
	// MaxBytes bounds the files' total size: past it, the folders used
	// longest ago are dropped.
	MaxBytes int64
	Log      *slog.Logger
}

// Disk is the metadata kept on disk for one mount scope.
type Disk struct {
	dir   string
	scope string
	aead  cipher.AEAD
	names []byte // HMAC key naming the files
	id    []byte // says which key sealed a file
	max   int64
	log   *slog.Logger

	mu    sync.Mutex
	files map[string]fileUse // by file name; guarded by mu
	total int64              // bytes of the files; guarded by mu
}

type fileUse struct {
	size int64
	used time.Time
}

const (
	magic    = "SSECFSM1"
	idLen    = 16
	idFile   = "key-id"
	maxFile  = 1 << 30 // a folder's file bigger than this is damage
	tmpMarks = ".tmp"
)

// Open opens (making it) the folder of a scope. A folder written under
// another key is emptied: its files could not be read.
func Open(o Options) (*Disk, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("metadata cache: %w", err)
	}
	b, err := aes.NewCipher(o.Key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(b)
	if err != nil {
		return nil, err
	}
	d := &Disk{dir: o.Dir, scope: o.Scope, aead: aead, max: o.MaxBytes, log: o.Log, files: map[string]fileUse{}}
	d.names = mac(o.Key, "file names")
	d.id = mac(o.Key, "key id")[:idLen]
	idPath := filepath.Join(o.Dir, idFile)
	old, err := os.ReadFile(idPath)
	if err == nil && string(old) != hex.EncodeToString(d.id) {
		d.log.Warn("metadata cache written under another key: dropped; it is rebuilt as folders are listed", "dir", o.Dir)
	}
	if err != nil || string(old) != hex.EncodeToString(d.id) {
		if err := d.clear(); err != nil {
			return nil, err
		}
		if err := os.WriteFile(idPath, []byte(hex.EncodeToString(d.id)), 0o600); err != nil {
			return nil, fmt.Errorf("metadata cache: %w", err)
		}
	}
	return d, d.scan()
}

func mac(key []byte, what string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(what))
	return h.Sum(nil)
}

// clear removes every file but the key id.
func (d *Disk) clear() error {
	ents, err := os.ReadDir(d.dir)
	if err != nil {
		return fmt.Errorf("metadata cache: %w", err)
	}
	for _, e := range ents {
		if e.Name() != idFile {
			_ = os.Remove(filepath.Join(d.dir, e.Name()))
		}
	}
	return nil
}

// scan indexes the files, removing what a crash left half-written.
func (d *Disk) scan() error {
	ents, err := os.ReadDir(d.dir)
	if err != nil {
		return fmt.Errorf("metadata cache: %w", err)
	}
	for _, e := range ents {
		name := e.Name()
		if name == idFile {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		if strings.HasSuffix(name, tmpMarks) || !e.Type().IsRegular() {
			_ = os.Remove(filepath.Join(d.dir, name))
			continue
		}
		d.files[name] = fileUse{size: info.Size(), used: info.ModTime()}
		d.total += info.Size()
	}
	return nil
}

// fileName is a folder's file: a keyed hash of the prefix, which the disk
// must not show.
func (d *Disk) fileName(prefix string) string {
	h := hmac.New(sha256.New, d.names)
	h.Write([]byte(prefix))
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// ad binds a file's content to its scope and folder.
func (d *Disk) ad(prefix string) []byte {
	return []byte("ssecfs metadata v1\x00" + d.scope + "\x00" + prefix)
}

// Load returns the records kept for the folder of prefix, by name; nil if
// there are none or the file does not open (logged and removed).
func (d *Disk) Load(prefix string) map[string]Record {
	recs, err := d.read(prefix)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			d.log.Warn("metadata cache file ignored and removed; its folder's objects are asked again", "prefix", prefix, "err", err)
			d.remove(d.fileName(prefix))
		}
		return nil
	}
	m := make(map[string]Record, len(recs))
	for _, r := range recs {
		m[r.Name] = r
	}
	return m
}

var (
	errOtherKey = errors.New("written under another key")
	errDamaged  = errors.New("damaged: torn or altered")
)

func (d *Disk) read(prefix string) ([]Record, error) {
	name := d.fileName(prefix)
	path := filepath.Join(d.dir, name)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	ns := d.aead.NonceSize()
	switch {
	case len(b) > maxFile || len(b) < len(magic)+idLen+ns+d.aead.Overhead() || string(b[:len(magic)]) != magic:
		return nil, errDamaged
	case !bytes.Equal(b[len(magic):len(magic)+idLen], d.id):
		return nil, errOtherKey
	}
	b = b[len(magic)+idLen:]
	plain, err := d.aead.Open(nil, b[:ns], b[ns:], d.ad(prefix))
	if err != nil {
		return nil, errDamaged
	}
	recs, err := decode(plain)
	if err != nil {
		return nil, errDamaged
	}
	now := time.Now()
	_ = os.Chtimes(path, now, now) // the folders used longest ago go first
	d.mu.Lock()
	if u, ok := d.files[name]; ok {
		u.used = now
		d.files[name] = u
	}
	d.mu.Unlock()
	return recs, nil
}

// Save replaces the folder's records (none: its file goes), then drops the
// folders used longest ago while the files pass the bound. The file is
// written aside and renamed into place: a crash leaves the old file or the
// new one, and a torn one would not open.
func (d *Disk) Save(prefix string, recs []Record) error {
	name := d.fileName(prefix)
	if len(recs) == 0 {
		d.remove(name)
		return nil
	}
	nonce := make([]byte, d.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return err
	}
	b := make([]byte, 0, 64)
	b = append(append(append(b, magic...), d.id...), nonce...)
	b = d.aead.Seal(b, nonce, encode(recs), d.ad(prefix))
	tmp, err := os.CreateTemp(d.dir, name+".*"+tmpMarks)
	if err != nil {
		return fmt.Errorf("metadata cache: %w", err)
	}
	_, err = tmp.Write(b)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(d.dir, name))
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("metadata cache: %w", err)
	}
	d.mu.Lock()
	d.total += int64(len(b)) - d.files[name].size
	d.files[name] = fileUse{size: int64(len(b)), used: time.Now()}
	victims := d.overLocked(name)
	d.mu.Unlock()
	for _, v := range victims {
		_ = os.Remove(filepath.Join(d.dir, v))
	}
	return nil
}

// overLocked picks the files used longest ago, never keep, to drop until
// the total is back under nine tenths of the bound, and forgets them.
func (d *Disk) overLocked(keep string) []string {
	if d.max <= 0 || d.total <= d.max {
		return nil
	}
	names := make([]string, 0, len(d.files))
	for n := range d.files {
		if n != keep {
			names = append(names, n)
		}
	}
	slices.SortFunc(names, func(a, b string) int { return d.files[a].used.Compare(d.files[b].used) })
	var out []string
	for _, n := range names {
		if d.total <= d.max/10*9 {
			break
		}
		d.total -= d.files[n].size
		delete(d.files, n)
		out = append(out, n)
	}
	return out
}

func (d *Disk) remove(name string) {
	_ = os.Remove(filepath.Join(d.dir, name))
	d.mu.Lock()
	d.total -= d.files[name].size
	delete(d.files, name)
	d.mu.Unlock()
}

// Bytes is the size of the files kept.
func (d *Disk) Bytes() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.total
}
