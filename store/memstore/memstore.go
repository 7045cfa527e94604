// Package memstore is an in-memory store.Store for fast tests. It keeps the
// SSE-C rules of a real server (a key is needed for encrypted objects, the
// wrong key is refused) and records the key MD5 sent with every call, so
// tests can assert that nothing touched object data without the key.
package memstore

import (
	"context"
	"fmt"
	"io"
	"maps"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ssecfs/ssecfs/store"
)

// Call is one recorded request.
type Call struct {
	Op     string // "list", "head", "read", "check"
	Key    string
	KeyMD5 string // MD5 of the key the call carried; "" for none
}

type object struct {
	data   []byte
	meta   map[string]string
	keyMD5 string // "" for a plaintext object
	etag   string
	mtime  time.Time
}

// Store is safe for concurrent use. mu guards every field.
type Store struct {
	keyMD5 string // the key the filesystem under test was given

	mu      sync.Mutex
	objects map[string]*object
	calls   []Call
	// Fail, when set, is asked before each call; a non-nil error is returned.
	Fail     func(op, key string) error
	seq      int
	noCopy   bool
	listMeta bool
	plainPut bool // uploads are stored without the key (SetStorePlain)
	uploads  map[string]*upload
	// sorted is the keys in order, nil after a key was added or removed:
	// a listing finds its prefix by binary search, so that a bucket of a
	// million objects lists as a server would (BenchmarkWalkMemory).
	sorted []string
}

var _ store.Store = (*Store)(nil)

// New returns an empty bucket; keyMD5 is the key the client will send.
func New(keyMD5 string) *Store {
	return &Store{keyMD5: keyMD5, objects: map[string]*object{}}
}

// Seed stores an object encrypted with the key whose MD5 is keyMD5 ("" for
// plaintext), as another client would have uploaded it.
func (s *Store) Seed(key string, data []byte, meta map[string]string, keyMD5 string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.putLocked(key, append([]byte(nil), data...), meta, keyMD5)
}

// now is the LastModified of the next object: a fixed clock, one second per
// object, so that tests can predict it.
func (s *Store) now() time.Time {
	return time.Unix(1700000000, 0).Add(time.Duration(s.seq) * time.Second)
}

// Calls returns a copy of the recorded calls.
func (s *Store) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// ResetCalls forgets the recorded calls.
func (s *Store) ResetCalls() {
	s.mu.Lock()
	s.calls = nil
	s.mu.Unlock()
}

// UnkeyedDataCalls lists calls that touched an encrypted object's data or
// metadata without the key: each one is a bug.
func (s *Store) UnkeyedDataCalls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	var bad []Call
	for _, c := range s.calls {
		o := s.objects[c.Key]
		if (c.Op == "head" || c.Op == "read") && c.KeyMD5 == "" && (o == nil || o.keyMD5 != "") {
			bad = append(bad, c)
		}
	}
	return bad
}

func (s *Store) recordLocked(op, key, keyMD5 string) error {
	s.calls = append(s.calls, Call{Op: op, Key: key, KeyMD5: keyMD5})
	if s.Fail != nil {
		return s.Fail(op, key)
	}
	return nil
}

func (s *Store) CheckBucket(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.recordLocked("check", "", "")
}

func (s *Store) List(ctx context.Context, prefix string, opts store.ListOptions, fn func(store.Entry) error) error {
	s.mu.Lock()
	op := "list"
	if opts.Metadata && s.listMeta {
		op = "list+meta"
	}
	if err := s.recordLocked(op, prefix, ""); err != nil {
		s.mu.Unlock()
		return err
	}
	if s.sorted == nil {
		s.sorted = make([]string, 0, len(s.objects))
		for k := range s.objects {
			s.sorted = append(s.sorted, k)
		}
		sort.Strings(s.sorted)
	}
	keys := s.sorted
	var out []store.Entry
	for i := sort.SearchStrings(keys, max(prefix, opts.StartAfter)); i < len(keys); {
		k := keys[i]
		if !strings.HasPrefix(k, prefix) {
			break
		}
		if k <= opts.StartAfter {
			i++
			continue
		}
		rest := k[len(prefix):]
		if j := strings.Index(rest, "/"); !opts.Recursive && j >= 0 {
			p := prefix + rest[:j+1]
			out = append(out, store.Entry{Key: p, IsPrefix: true})
			// Past every key under p: they are next to each other.
			i += sort.Search(len(keys)-i, func(n int) bool { return !strings.HasPrefix(keys[i+n], p) })
			continue
		}
		i++
		o := s.objects[k]
		e := store.Entry{Key: k, Size: int64(len(o.data)), ETag: o.etag, LastModified: o.mtime}
		if opts.Metadata && s.listMeta && !strings.HasSuffix(k, "/") {
			// As MinIO lists with metadata=true: SSE-C or not, not whose key.
			enc := store.EncPlain
			if o.keyMD5 != "" {
				enc = store.EncOurs
			}
			e.Attrs = &store.Attrs{Size: e.Size, ETag: o.etag, LastModified: o.mtime, Meta: maps.Clone(o.meta),
				Encryption: enc, Listed: true}
			if e.Attrs.Meta == nil {
				e.Attrs.Meta = map[string]string{}
			}
		}
		out = append(out, e)
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	for i, e := range out {
		if opts.Limit > 0 && i >= opts.Limit {
			break
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

// ListsMetadata is true after SetListMeta(true), as on MinIO.
func (s *Store) ListsMetadata() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.listMeta
}

// SetListMeta makes listings asked for metadata carry each object's
// metadata, as MinIO's do.
func (s *Store) SetListMeta(v bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.listMeta = v
}

// access applies the SSE-C rules of a server to a request carrying sent.
func (s *Store) access(key, sent string) (*object, store.Encryption, error) {
	o, ok := s.objects[key]
	if !ok {
		return nil, 0, fmt.Errorf("%q: %w", key, store.ErrNotFound)
	}
	switch {
	case o.keyMD5 == "":
		return o, store.EncPlain, nil
	case sent == "":
		return nil, 0, fmt.Errorf("%q: %w (no key sent)", key, store.ErrUnkeyed)
	case sent != o.keyMD5:
		return nil, 0, fmt.Errorf("%q: %w", key, store.ErrOtherKey)
	}
	return o, store.EncOurs, nil
}

func (s *Store) Head(ctx context.Context, key string) (store.Attrs, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.recordLocked("head", key, s.keyMD5); err != nil {
		return store.Attrs{}, err
	}
	o, enc, err := s.access(key, s.keyMD5)
	if err != nil {
		return store.Attrs{}, err
	}
	meta := map[string]string{}
	for k, v := range o.meta {
		meta[k] = v
	}
	return store.Attrs{Size: int64(len(o.data)), ETag: o.etag, LastModified: o.mtime, Meta: meta, Encryption: enc}, nil
}

func (s *Store) ReadRange(ctx context.Context, key string, r store.Range, dst []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sent := s.keyMD5
	if r.Plaintext {
		sent = ""
	}
	if err := s.recordLocked("read", key, sent); err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	o, _, err := s.access(key, sent)
	if err != nil {
		return 0, err
	}
	if r.IfMatch != "" && r.IfMatch != o.etag {
		return 0, fmt.Errorf("%q: %w", key, store.ErrChanged)
	}
	if len(dst) > 0 && r.Offset >= int64(len(o.data)) {
		// As S3.ReadRange: the servers answer a range starting at or past
		// the end with 416, which it reports as io.EOF.
		return 0, io.EOF
	}
	if r.Offset+int64(len(dst)) > int64(len(o.data)) {
		return 0, fmt.Errorf("%q: read past the end", key)
	}
	return copy(dst, o.data[r.Offset:]), nil
}
