package memstore

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ssecfs/ssecfs/store"
)

// SetNoCopyObject makes Copy answer ErrNotImplemented, as Ceph RGW before
// v20 answers CopyObject of an SSE-C object; and store the copy of a
// plaintext source in plaintext, as RGW 16 does.
func (s *Store) SetNoCopyObject(v bool) {
	s.mu.Lock()
	s.noCopy = v
	s.mu.Unlock()
}

type upload struct {
	key       string
	meta      map[string]string
	parts     map[int][]byte
	initiated time.Time
}

// minPart is the smallest part but the last that the servers (MinIO, RGW,
// AWS) accept in a completion; a smaller one fails it with EntityTooSmall.
const minPart = 5 << 20

func (s *Store) Put(ctx context.Context, key string, body io.Reader, size int64, meta map[string]string) (string, error) {
	data, err := io.ReadAll(io.LimitReader(body, size))
	if err != nil {
		return "", err
	}
	if int64(len(data)) != size {
		return "", fmt.Errorf("put %q: body of %d bytes, announced %d", key, len(data), size)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.recordLocked("put", key, s.keyMD5); err != nil {
		return "", err
	}
	if s.plainPut {
		s.putLocked(key, data, meta, "")
		return "", fmt.Errorf("put %q: %w", key, store.ErrNoEcho)
	}
	s.putLocked(key, data, meta, s.keyMD5)
	return s.objects[key].etag, nil
}

// SetStorePlain makes uploads store objects without the key from now on,
// as a server or proxy that drops the SSE-C headers would; a PUT's answer
// then lacks the echo (ErrNoEcho), and CompleteMultipart's says nothing,
// as RGW's never does.
func (s *Store) SetStorePlain(v bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.plainPut = v
}

func (s *Store) putLocked(key string, data []byte, meta map[string]string, keyMD5 string) {
	s.seq++
	m := map[string]string{}
	for k, v := range meta {
		// Header names are case-insensitive: the servers' answers (and
		// S3.Head) give them in lower case, whatever case was sent.
		m[strings.ToLower(k)] = v
	}
	if _, ok := s.objects[key]; !ok {
		s.sorted = nil
	}
	s.objects[key] = &object{data: data, meta: m, keyMD5: keyMD5, etag: "etag-" + strconv.Itoa(s.seq), mtime: s.now()}
}

func (s *Store) CreateMultipart(ctx context.Context, key string, meta map[string]string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.recordLocked("create", key, s.keyMD5); err != nil {
		return "", err
	}
	s.seq++
	id := "upload-" + strconv.Itoa(s.seq)
	if s.uploads == nil {
		s.uploads = map[string]*upload{}
	}
	s.uploads[id] = &upload{key: key, meta: meta, parts: map[int][]byte{}, initiated: s.now()}
	return id, nil
}

func (s *Store) UploadPart(ctx context.Context, key, uploadID string, n int, body io.Reader, size int64) (store.Part, error) {
	data, err := io.ReadAll(io.LimitReader(body, size))
	if err != nil {
		return store.Part{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.recordLocked("part", key, s.keyMD5); err != nil {
		return store.Part{}, err
	}
	u, ok := s.uploads[uploadID]
	if !ok || u.key != key {
		return store.Part{}, fmt.Errorf("no upload %s: %w", uploadID, store.ErrNotFound)
	}
	u.parts[n] = data
	sum := md5.Sum(data) // as S3: a part's ETag is its MD5
	return store.Part{Number: n, ETag: hex.EncodeToString(sum[:])}, nil
}

func (s *Store) CompleteMultipart(ctx context.Context, key, uploadID string, parts []store.Part) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.recordLocked("complete", key, s.keyMD5); err != nil {
		return err
	}
	u, ok := s.uploads[uploadID]
	if !ok {
		return fmt.Errorf("no upload %s: %w", uploadID, store.ErrNotFound)
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i].Number < parts[j].Number })
	var data []byte
	for i, p := range parts {
		if i < len(parts)-1 && len(u.parts[p.Number]) < minPart {
			// The upload stays, as on the servers: it can be aborted.
			return fmt.Errorf("complete multipart upload of %q: part %d of %d bytes: EntityTooSmall", key, p.Number, len(u.parts[p.Number]))
		}
		data = append(data, u.parts[p.Number]...)
	}
	delete(s.uploads, uploadID)
	keyMD5 := s.keyMD5
	if s.plainPut {
		keyMD5 = ""
	}
	s.putLocked(key, data, u.meta, keyMD5)
	s.objects[key].etag = store.MultipartETag(parts)
	return nil
}

func (s *Store) AbortMultipart(ctx context.Context, key, uploadID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.recordLocked("abort", key, ""); err != nil {
		return err
	}
	delete(s.uploads, uploadID)
	return nil
}

func (s *Store) ListUploads(ctx context.Context, prefix string) ([]store.PendingUpload, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []store.PendingUpload
	for id, u := range s.uploads {
		if strings.HasPrefix(u.key, prefix) {
			out = append(out, store.PendingUpload{Key: u.key, ID: id, Initiated: u.initiated})
		}
	}
	return out, nil
}

// Uploads is the number of multipart uploads neither completed nor aborted.
func (s *Store) Uploads() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.uploads)
}

func (s *Store) Copy(ctx context.Context, src, dst string, srcPlain bool, meta map[string]string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.recordLocked("copy", dst, s.keyMD5); err != nil {
		return err
	}
	if s.noCopy && !srcPlain {
		return fmt.Errorf("copy %q: %w", src, store.ErrNotImplemented)
	}
	o, err := s.sourceLocked(src, srcPlain)
	if err != nil {
		return err
	}
	if meta == nil {
		meta = o.meta
	}
	keyMD5 := s.keyMD5
	if s.noCopy {
		// Ceph RGW 16 copies a plaintext source (200, no echo) but stores
		// the copy in plaintext, ignoring the destination's key.
		keyMD5 = ""
	}
	s.putLocked(dst, append([]byte(nil), o.data...), meta, keyMD5)
	return nil
}

func (s *Store) sourceLocked(src string, srcPlain bool) (*object, error) {
	sent := s.keyMD5
	if srcPlain {
		sent = ""
	}
	o, _, err := s.access(src, sent)
	return o, err
}

func (s *Store) CopyPart(ctx context.Context, src, dst, uploadID string, n int, off, length int64, srcPlain bool) (store.Part, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.recordLocked("copypart", dst, s.keyMD5); err != nil {
		return store.Part{}, err
	}
	o, err := s.sourceLocked(src, srcPlain)
	if err != nil {
		return store.Part{}, err
	}
	u, ok := s.uploads[uploadID]
	if !ok {
		return store.Part{}, fmt.Errorf("no upload %s: %w", uploadID, store.ErrNotFound)
	}
	if off+length > int64(len(o.data)) {
		return store.Part{}, fmt.Errorf("copy range past the end of %q", src)
	}
	u.parts[n] = append([]byte(nil), o.data[off:off+length]...)
	return store.Part{Number: n, ETag: fmt.Sprintf("c%d", n)}, nil
}

func (s *Store) Delete(ctx context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.recordLocked("delete", key, ""); err != nil {
		return err
	}
	delete(s.objects, key)
	s.sorted = nil
	return nil
}

// Object returns a copy of an object's bytes and metadata, and whether it
// is encrypted with the client's key, for tests to check what was stored.
func (s *Store) Object(key string) (data []byte, meta map[string]string, ours bool, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.objects[key]
	if !ok {
		return nil, nil, false, false
	}
	m := map[string]string{}
	for k, v := range o.meta {
		m[k] = v
	}
	return append([]byte(nil), o.data...), m, o.keyMD5 == s.keyMD5, true
}

// Keys lists the stored object keys, sorted.
func (s *Store) Keys() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for k := range s.objects {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
