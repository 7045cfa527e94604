package fs

import (
	"fmt"
	"log"
	"log/slog"
	"os"
	"runtime/debug"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// MountOptions are the kernel-facing settings of a mount.
type MountOptions struct {
	FsName     string // shown in /proc/mounts, e.g. "ssecfs:bucket/prefix"
	AllowOther bool
	ReadOnly   bool
	NoExec     bool // programs on it cannot be run (it is always nosuid, nodev)
	Debug      bool // log every FUSE request
}

// Server is a mounted filesystem.
type Server struct {
	srv *fuse.Server
}

// Mount mounts f at mountpoint and starts serving. It returns once the
// kernel has the mount, so a caller can report readiness.
func (f *FS) Mount(mountpoint string, mo MountOptions) (*Server, error) {
	ttl := f.opts.MetaTTL
	opts := &fusefs.Options{
		// Kernel caches are as honest as ours: entries and attributes for
		// the metadata TTL, absent names too.
		EntryTimeout:    &ttl,
		AttrTimeout:     &ttl,
		NegativeTimeout: &ttl,
		UID:             f.opts.UID,
		GID:             f.opts.GID,
		MountOptions: fuse.MountOptions{
			FsName:     mo.FsName,
			Name:       "ssecfs",
			AllowOther: mo.AllowOther,
			// The kernel checks permissions against the modes we show.
			Options:      []string{"default_permissions"},
			DirectMount:  os.Geteuid() == 0,
			MaxWrite:     1 << 20,
			MaxReadAhead: 1 << 20,
			// Parallel reads from the kernel let read-ahead overlap.
			MaxBackground: 64,
			// Reads answer from memory, never from a file descriptor:
			// go-fuse's splice path would put each reply's header in a
			// pipe, then drain it and write the reply as without it.
			DisableSplice: true,
			// Readdirplus answers with a listing the attributes known
			// without a request (dirhandle.go); the others are looked up
			// when a program stats them, in parallel (dir.go), so `find`
			// costs no HEAD.
			// S3 has no extended attributes: ENOSYS makes the kernel stop
			// asking, and `cp -a` falls back to plain modes.
			DisableXAttrs: true,
			Debug:         mo.Debug,
			Logger:        log.New(slogWriter{f.log}, "", 0),
			// go-fuse turns a panic into EIO and goes on; it is a bug, so
			// it is logged as an error with its stack, whatever the level.
			PanicHandler: func(obj any) fuse.Status {
				f.log.Error("internal error, answered EIO", "panic", fmt.Sprint(obj), "stack", string(debug.Stack()))
				return fuse.EIO
			},
		},
	}
	if mo.ReadOnly || f.stage == nil {
		opts.MountOptions.Options = append(opts.MountOptions.Options, "ro")
	}
	if mo.NoExec {
		opts.MountOptions.Options = append(opts.MountOptions.Options, "noexec")
	}
	srv, err := fusefs.Mount(mountpoint, f.root, opts)
	if err != nil {
		return nil, fmt.Errorf("mount %s: %w", mountpoint, err)
	}
	return &Server{srv: srv}, nil
}

// Wait blocks until the filesystem is unmounted.
func (s *Server) Wait() { s.srv.Wait() }

// Unmount asks the kernel to unmount; it fails while files are open.
func (s *Server) Unmount() error { return s.srv.Unmount() }

// slogWriter sends go-fuse's own log lines to the mount's logger.
type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.l.Debug("fuse", "msg", string(p))
	return len(p), nil
}
