//go:build integration

package integration

// Two mounts of one bucket on this machine stand for two machines sharing
// a bucket (many machines on one Ceph cluster): each has its own journal,
// and they meet only in the bucket.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// gate is a TLS reverse proxy in front of s that holds the requests a test
// picks until the test opens it: the test can look at the bucket from
// another mount at a chosen point of an operation.
type gate struct {
	URL     string
	mu      sync.Mutex
	pick    func(*http.Request) bool // guarded by mu
	arrived chan struct{}            // a value when the first picked request is held
	open    chan struct{}
	once    sync.Once
	next    http.RoundTripper
}

func newGate(t *testing.T, s *server) *gate {
	t.Helper()
	g := &gate{arrived: make(chan struct{}, 1), open: make(chan struct{})}
	g.URL, _ = s.tlsProxy(t, func(next http.RoundTripper) http.RoundTripper {
		g.next = next
		return g
	})
	t.Cleanup(g.release) // before the proxy stops: held requests go on
	return g
}

// hold makes the gate hold, from now on, the requests pick chooses.
func (g *gate) hold(pick func(*http.Request) bool) {
	g.mu.Lock()
	g.pick = pick
	g.mu.Unlock()
}

func (g *gate) release() { g.once.Do(func() { close(g.open) }) }

// held waits until a picked request is held.
func (g *gate) held(t *testing.T) {
	t.Helper()
	select {
	case <-g.arrived:
	case <-time.After(2 * time.Minute): // a hang guard, not a synchronisation
		t.Fatal("no request was held")
	}
}

func (g *gate) RoundTrip(req *http.Request) (*http.Response, error) {
	g.mu.Lock()
	pick := g.pick
	g.mu.Unlock()
	if pick != nil && pick(req) {
		select {
		case g.arrived <- struct{}{}:
		default:
		}
		<-g.open
	}
	return g.next.RoundTrip(req)
}

// ownMount mounts b with a journal of its own, as a second machine has.
func ownMount(t *testing.T, s *server, b string, args ...string) *mount {
	t.Helper()
	return s.mount(t, b, append([]string{"--journal-dir", t.TempDir()}, args...)...)
}

// names lists a folder of a mount.
func names(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("listing %s: %v", dir, err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// absent checks that p does not exist, by stat and by open.
func absent(t *testing.T, p string) {
	t.Helper()
	if st, err := os.Stat(p); !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("stat %s: %v %v, want ENOENT", p, st, err)
	}
	if _, err := os.ReadFile(p); !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("open %s: %v, want ENOENT", p, err)
	}
}

// holds checks that p shows size len(want) and reads as want.
func holds(t *testing.T, p string, want []byte) {
	t.Helper()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatalf("stat %s: %v", p, err)
	}
	if st.Size() != int64(len(want)) {
		t.Fatalf("%s shows size %d, want %d", p, st.Size(), len(want))
	}
	got, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("read %s: %v", p, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: %d bytes read differ from the %d written", p, len(got), len(want))
	}
}

// restIsOldOrClean reads the rest of f, a handle opened on old and read
// up to len(head) already: what it returns must be old's bytes, ending in
// old's end or in one of the errors allowed, never bytes of another version.
func restIsOldOrClean(t *testing.T, f *os.File, head, old []byte, allowed ...syscall.Errno) {
	t.Helper()
	rest, err := io.ReadAll(f)
	got := append(append([]byte(nil), head...), rest...)
	if !bytes.HasPrefix(old, got) {
		t.Fatalf("a handle opened on the old version read %d bytes that are not the old ones: versions mixed", len(got))
	}
	if err == nil && len(got) != len(old) {
		t.Fatalf("a handle opened on the old version read %d of its %d bytes and then EOF", len(got), len(old))
	}
	if err != nil && !slices.ContainsFunc(allowed, func(e syscall.Errno) bool { return errors.Is(err, e) }) {
		t.Fatalf("a handle opened on the old version failed with %v, want one of %v", err, allowed)
	}
	t.Logf("the old handle read %d old bytes, then %v", len(got), err)
}

// TestSecondMountSeesWhatTheFirstClosedOrFsyncedAtOnceWithMetaTTLZero: a
// mount with --meta-ttl 0s asks the bucket every time, so what another
// mount closed (with --write-back 0s) or fsync'ed shows as soon as that
// call returned: new files, new content and size, deletions, new folders.
func TestSecondMountSeesWhatTheFirstClosedOrFsyncedAtOnceWithMetaTTLZero(t *testing.T) {
	eachServer(t, func(t *testing.T, s *server) {
		b := s.bucket(t)
		w := ownMount(t, s, b, "--write-back", "0s")
		r := ownMount(t, s, b, "--meta-ttl", "0s")
		wp := func(n string) string { return filepath.Join(w.dir, n) }
		rp := func(n string) string { return filepath.Join(r.dir, n) }

		// The reader asks first, so that any cache would now hold "absent".
		absent(t, rp("new.txt"))
		absent(t, rp("folder"))
		if n := names(t, r.dir); len(n) != 0 {
			t.Fatalf("a fresh bucket lists %v", n)
		}

		v1 := []byte("first version\n")
		if err := os.WriteFile(wp("new.txt"), v1, 0o644); err != nil {
			t.Fatal(err)
		}
		holds(t, rp("new.txt"), v1)
		if n := names(t, r.dir); !slices.Equal(n, []string{"new.txt"}) {
			t.Fatalf("after a close on the other mount the root lists %v", n)
		}

		v2 := random(t, 3<<20+5) // another size, and more than a block
		if err := os.WriteFile(wp("new.txt"), v2, 0o644); err != nil {
			t.Fatal(err)
		}
		holds(t, rp("new.txt"), v2)

		// fsync'ed while still open for writing.
		v3 := random(t, 100<<10)
		f, err := os.Create(wp("synced.bin"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.Write(v3); err != nil {
			t.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
		holds(t, rp("synced.bin"), v3)
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}

		if err := os.Remove(wp("new.txt")); err != nil {
			t.Fatal(err)
		}
		absent(t, rp("new.txt"))
		if n := names(t, r.dir); !slices.Equal(n, []string{"synced.bin"}) {
			t.Fatalf("after a delete on the other mount the root lists %v", n)
		}

		if err := os.Mkdir(wp("folder"), 0o750); err != nil {
			t.Fatal(err)
		}
		if st, err := os.Stat(rp("folder")); err != nil || !st.IsDir() || st.Mode().Perm() != 0o750 {
			t.Fatalf("a folder made on the other mount: %v %v", st, err)
		}
		if n := names(t, r.dir); !slices.Equal(n, []string{"folder", "synced.bin"}) {
			t.Fatalf("after a mkdir on the other mount the root lists %v", n)
		}
		if n := names(t, rp("folder")); len(n) != 0 {
			t.Fatalf("the new folder lists %v", n)
		}
		v4 := []byte("inside")
		if err := os.WriteFile(wp("folder/inside"), v4, 0o644); err != nil {
			t.Fatal(err)
		}
		holds(t, rp("folder/inside"), v4)
	})
}

// TestTwoMountsWritingOneFileAtOnceLeaveOneCompleteVersion: two mounts
// write the same name at the same time, one of them large enough for a
// multipart upload; both closes succeed, the bucket holds exactly one of
// the two versions, and every mount reads a whole version.
func TestTwoMountsWritingOneFileAtOnceLeaveOneCompleteVersion(t *testing.T) {
	eachServer(t, func(t *testing.T, s *server) {
		b := s.bucket(t)
		m := [2]*mount{
			ownMount(t, s, b, "--write-back", "0s", "--meta-ttl", "0s"),
			ownMount(t, s, b, "--write-back", "0s", "--meta-ttl", "0s"),
		}
		const rounds = 3
		versions := map[string][2][]byte{}
		for round := 0; round < rounds; round++ {
			name := fmt.Sprintf("same-%d.bin", round)
			v := [2][]byte{random(t, 3<<20), random(t, 20<<20)}
			if round%2 == 1 {
				v[0], v[1] = v[1], v[0] // each mount writes the large one in turn
			}
			versions[name] = v
			start := make(chan struct{})
			var wg sync.WaitGroup
			var errs [2]error
			for i := range m {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					f, err := os.OpenFile(filepath.Join(m[i].dir, name), os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
					if err != nil {
						errs[i] = err
						return
					}
					if _, err := f.Write(v[i]); err != nil {
						f.Close()
						errs[i] = err
						return
					}
					if i == 1 { // one fsyncs, the other only closes
						if err := f.Sync(); err != nil {
							f.Close()
							errs[i] = fmt.Errorf("fsync: %w", err)
							return
						}
					}
					errs[i] = f.Close()
				}()
			}
			close(start)
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Fatalf("round %d: mount %d writing %d bytes: %v", round, i, len(v[i]), err)
				}
			}
			// Each writer now reads one whole version, its own or the other's.
			for i := range m {
				got, err := os.ReadFile(filepath.Join(m[i].dir, name))
				if err != nil || !bytes.Equal(got, v[0]) && !bytes.Equal(got, v[1]) {
					t.Fatalf("round %d: mount %d reads %d bytes that are neither version (%v)", round, i, len(got), err)
				}
			}
		}

		down := t.TempDir()
		s.aws(t, append([]string{"s3", "sync", "s3://" + b + "/", down}, sse(secret)...)...)
		fresh := ownMount(t, s, b)
		for name, v := range versions {
			stored, err := os.ReadFile(filepath.Join(down, name))
			if err != nil {
				t.Fatal(err)
			}
			which := slices.IndexFunc(v[:], func(x []byte) bool { return bytes.Equal(x, stored) })
			if which < 0 {
				t.Fatalf("%s: the bucket holds %d bytes that are neither version: a mix", name, len(stored))
			}
			t.Logf("%s: the bucket holds mount %d's %d bytes", name, which, len(stored))
			holds(t, filepath.Join(fresh.dir, name), stored)
			for i := range m {
				holds(t, filepath.Join(m[i].dir, name), stored)
			}
		}
		if n := s.assertAllEncrypted(t, b); n != rounds {
			t.Fatalf("%d objects in the bucket, want %d", n, rounds)
		}
	})
}

// TestFolderRenamedOnOneMountShowsWholeUnderItsNewNameOnTheOther: after a
// folder rename on one mount returns, a mount with --meta-ttl 0s shows the
// folder, its files and subfolder under the new name only; a handle it
// opened before the rename reads old bytes or fails cleanly.
func TestFolderRenamedOnOneMountShowsWholeUnderItsNewNameOnTheOther(t *testing.T) {
	eachServer(t, func(t *testing.T, s *server) {
		b := s.bucket(t)
		w := ownMount(t, s, b, "--write-back", "0s")
		// No read-ahead and 1 MiB blocks: the open handle fetches the rest
		// of its file after the rename.
		r := ownMount(t, s, b, "--meta-ttl", "0s", "--read-ahead", "0", "--block-size", "1M")
		files := map[string][]byte{
			"a.txt":       []byte("a"),
			"b.bin":       random(t, 100<<10),
			"big.bin":     random(t, 4<<20),
			"empty":       {},
			"sub/c.txt":   []byte("c in sub"),
			"sub/d.bin":   random(t, 70<<10),
			"sub/deeper/": nil, // a folder with nothing in it
		}
		for name, data := range files {
			p := filepath.Join(w.dir, "proj", name)
			if data == nil {
				if err := os.MkdirAll(p, 0o755); err != nil {
					t.Fatal(err)
				}
				continue
			}
			os.MkdirAll(filepath.Dir(p), 0o755)
			if err := os.WriteFile(p, data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		// The reader has the folder in view and one file open, half read.
		if n := names(t, filepath.Join(r.dir, "proj")); !slices.Equal(n, []string{"a.txt", "b.bin", "big.bin", "empty", "sub"}) {
			t.Fatalf("before the rename the reader lists %v", n)
		}
		f, err := os.Open(filepath.Join(r.dir, "proj/big.bin"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		head := make([]byte, 1<<20)
		if _, err := io.ReadFull(f, head); err != nil {
			t.Fatal(err)
		}

		if err := os.Rename(filepath.Join(w.dir, "proj"), filepath.Join(w.dir, "moved")); err != nil {
			t.Fatal(err)
		}

		absent(t, filepath.Join(r.dir, "proj"))
		absent(t, filepath.Join(r.dir, "proj/a.txt"))
		if n := names(t, r.dir); !slices.Equal(n, []string{"moved"}) {
			t.Fatalf("after the rename the reader's root lists %v", n)
		}
		if n := names(t, filepath.Join(r.dir, "moved")); !slices.Equal(n, []string{"a.txt", "b.bin", "big.bin", "empty", "sub"}) {
			t.Fatalf("the renamed folder lists %v", n)
		}
		if n := names(t, filepath.Join(r.dir, "moved/sub")); !slices.Equal(n, []string{"c.txt", "d.bin", "deeper"}) {
			t.Fatalf("its subfolder lists %v", n)
		}
		for name, data := range files {
			if data == nil {
				if st, err := os.Stat(filepath.Join(r.dir, "moved", name)); err != nil || !st.IsDir() {
					t.Fatalf("moved/%s: %v %v", name, st, err)
				}
				continue
			}
			holds(t, filepath.Join(r.dir, "moved", name), data)
		}
		restIsOldOrClean(t, f, head, files["big.bin"], syscall.ESTALE, syscall.ENOENT)
		for _, k := range s.keys(t, b) {
			if strings.HasPrefix(k, "proj/") {
				t.Fatalf("an object is left under the old name: %s", k)
			}
		}
	})
}

// TestFileRewrittenOnOneMountWhileOpenOnTheOther: a handle open on the
// other mount keeps reading the old version or fails with ESTALE, even
// after a new open there has read the new version; the new open reads
// the new bytes.
func TestFileRewrittenOnOneMountWhileOpenOnTheOther(t *testing.T) {
	eachServer(t, func(t *testing.T, s *server) {
		b := s.bucket(t)
		w := ownMount(t, s, b, "--write-back", "0s")
		r := ownMount(t, s, b, "--meta-ttl", "0s", "--read-ahead", "0", "--block-size", "1M")
		old := bytes.Repeat([]byte("old!"), 2<<20) // 8 MiB
		if err := os.WriteFile(filepath.Join(w.dir, "f"), old, 0o644); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(filepath.Join(r.dir, "f"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		head := make([]byte, 1<<20)
		if _, err := io.ReadFull(f, head); err != nil {
			t.Fatal(err)
		}

		neu := bytes.Repeat([]byte("NEW!"), 3<<20) // 12 MiB
		if err := os.WriteFile(filepath.Join(w.dir, "f"), neu, 0o644); err != nil {
			t.Fatal(err)
		}
		// A new open first: its pages must not leak into the old handle.
		holds(t, filepath.Join(r.dir, "f"), neu)
		restIsOldOrClean(t, f, head, old, syscall.ESTALE)
		holds(t, filepath.Join(r.dir, "f"), neu)
	})
}

// TestFolderRenameOnOneMountShowsBothNamesUntilItsDeletesAreDone: a folder
// rename copies every object, then deletes the old ones. With the deletes
// held back, the other mount sees the folder complete under both names;
// once the rename returns, only under the new one.
func TestFolderRenameOnOneMountShowsBothNamesUntilItsDeletesAreDone(t *testing.T) {
	eachServer(t, func(t *testing.T, s *server) {
		b := s.bucket(t)
		g := newGate(t, s)
		w := ownMount(t, s, b, "--endpoint", g.URL, "--write-back", "0s")
		r := ownMount(t, s, b, "--meta-ttl", "0s")
		files := map[string][]byte{"a.txt": []byte("a"), "b.bin": random(t, 200<<10), "sub/c.txt": []byte("c")}
		for name, data := range files {
			p := filepath.Join(w.dir, "proj", name)
			os.MkdirAll(filepath.Dir(p), 0o755)
			if err := os.WriteFile(p, data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		g.hold(func(req *http.Request) bool { return req.Method == http.MethodDelete })
		done := make(chan error, 1)
		go func() { done <- os.Rename(filepath.Join(w.dir, "proj"), filepath.Join(w.dir, "moved")) }()
		g.held(t)

		if n := names(t, r.dir); !slices.Equal(n, []string{"moved", "proj"}) {
			t.Fatalf("between the copies and the deletes the other mount lists %v", n)
		}
		for _, top := range []string{"proj", "moved"} {
			for name, data := range files {
				holds(t, filepath.Join(r.dir, top, name), data)
			}
		}
		g.release()
		if err := <-done; err != nil {
			t.Fatalf("rename: %v", err)
		}
		if n := names(t, r.dir); !slices.Equal(n, []string{"moved"}) {
			t.Fatalf("after the rename the other mount lists %v", n)
		}
		for name, data := range files {
			holds(t, filepath.Join(r.dir, "moved", name), data)
		}
		for _, k := range s.keys(t, b) {
			if strings.HasPrefix(k, "proj/") {
				t.Fatalf("an object is left under the old name: %s", k)
			}
		}
	})
}

// TestMultipartUploadReplacedBeforeItsCheckStaysOneCompleteVersion: the
// other mount's upload lands between this mount's completion of a
// multipart upload and the HEAD that checks it. The check sees another
// size, so this writer's close fails (EIO) and its file is uploaded again
// from the journal; whatever is read at any point is one whole version.
func TestMultipartUploadReplacedBeforeItsCheckStaysOneCompleteVersion(t *testing.T) {
	eachServer(t, func(t *testing.T, s *server) {
		b := s.bucket(t)
		g := newGate(t, s)
		l := ownMount(t, s, b, "--endpoint", g.URL, "--write-back", "0s")
		sm := ownMount(t, s, b, "--write-back", "0s")
		r := ownMount(t, s, b, "--meta-ttl", "0s")
		large, small := random(t, 20<<20), random(t, 3<<20)
		// The only HEAD of the name from the large writer is its check.
		g.hold(func(req *http.Request) bool {
			return req.Method == http.MethodHead && strings.HasSuffix(req.URL.Path, "/race.bin")
		})
		done := make(chan error, 1)
		go func() { done <- os.WriteFile(filepath.Join(l.dir, "race.bin"), large, 0o644) }()
		g.held(t)
		if err := os.WriteFile(filepath.Join(sm.dir, "race.bin"), small, 0o644); err != nil {
			t.Fatal(err)
		}
		g.release()
		t.Logf("the large writer's close: %v", <-done)
		whole := func(when string) {
			got, err := os.ReadFile(filepath.Join(r.dir, "race.bin"))
			if err != nil || !bytes.Equal(got, large) && !bytes.Equal(got, small) {
				t.Fatalf("%s: %d bytes that are neither version (%v)", when, len(got), err)
			}
			t.Logf("%s: %d bytes, one whole version", when, len(got))
		}
		whole("once both closes returned")
		l.unmount(t) // uploads what its journal holds
		whole("after the large writer's unmount")
	})
}
