package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// The daemon listens on a unix socket, private to the user, for
// `ssecfs status`, `ssecfs sync` and `ssecfs umount`. Its name derives from the
// mountpoint, so both commands find it from the path alone.

type request struct {
	Op   string `json:"op"`             // "status", "sync" or "unmount"
	Path string `json:"path,omitempty"` // sync: a path relative to the mountpoint
}

func runtimeDir() string {
	// Root's is the system's whatever the session says, as its state is
	// (paths.go): a mount made at boot and a root shell must meet.
	if os.Geteuid() == 0 {
		return "/run/ssecfs"
	}
	// XDG_RUNTIME_DIR only if it is ours: su and runuser may pass another
	// user's along.
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		var st syscall.Stat_t
		if syscall.Stat(d, &st) == nil && int(st.Uid) == os.Getuid() {
			return filepath.Join(d, "ssecfs")
		}
	}
	return filepath.Join(os.TempDir(), "ssecfs-"+strconv.Itoa(os.Getuid()))
}

func socketPath(mountpoint string) string {
	h := sha256.Sum256([]byte(mountpoint))
	return filepath.Join(runtimeDir(), hex.EncodeToString(h[:8])+".sock")
}

// controlServer answers requests until closed.
type controlServer struct {
	l        net.Listener
	path     string
	status   func() reply
	sync     func(path string) reply // uploads what waits under path now
	unmount  func() error            // asks the kernel to unmount; fails when busy
	finished chan struct{}
	final    reply // set before finished is closed
	log      *slog.Logger
	handlers sync.WaitGroup // answers being written; the daemon exits after them
}

func listenControl(mountpoint string, log *slog.Logger) (*controlServer, error) {
	dir := runtimeDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("control folder %s must be private (mode 0700)", dir)
	}
	path := socketPath(mountpoint)
	os.Remove(path) // a stale socket of a daemon that died
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	return &controlServer{l: l, path: path, finished: make(chan struct{}), log: log}, nil
}

func (c *controlServer) serve() {
	for {
		conn, err := c.l.Accept()
		if err != nil {
			return
		}
		c.handlers.Add(1)
		go func() {
			defer c.handlers.Done()
			c.handle(conn)
		}()
	}
}

func (c *controlServer) handle(conn net.Conn) {
	defer conn.Close()
	var req request
	if err := json.NewDecoder(bufio.NewReader(conn)).Decode(&req); err != nil {
		return
	}
	enc := json.NewEncoder(conn)
	switch req.Op {
	case "status":
		enc.Encode(c.status())
	case "sync":
		enc.Encode(c.sync(req.Path))
	case "unmount":
		if err := c.unmount(); err != nil {
			r := c.status()
			r.Error = err.Error()
			enc.Encode(r)
			return
		}
		<-c.finished // the daemon drains the journal, then answers
		enc.Encode(c.final)
	}
}

// finish answers the waiting unmount requests with the final state.
func (c *controlServer) finish(r reply) {
	c.final = r
	close(c.finished)
}

// close stops listening and waits (a few seconds at most) for answers
// still being written, such as the final one to `ssecfs umount`.
func (c *controlServer) close() {
	c.l.Close()
	os.Remove(c.path)
	done := make(chan struct{})
	go func() {
		c.handlers.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
}

// ask sends one request to the daemon of mountpoint. wait bounds the wait
// for the answer (0: none, for an unmount that drains the journal).
func ask(mountpoint, op string, wait time.Duration) (reply, error) {
	return send(mountpoint, request{Op: op}, wait)
}

func send(mountpoint string, req request, wait time.Duration) (reply, error) {
	return sendTo(socketPath(mountpoint), req, wait)
}

func sendTo(socket string, req request, wait time.Duration) (reply, error) {
	conn, err := net.Dial("unix", socket)
	if err != nil {
		return reply{}, err
	}
	defer conn.Close()
	if wait > 0 {
		conn.SetDeadline(time.Now().Add(wait))
	}
	if err := json.NewEncoder(conn).Encode(req); err != nil {
		return reply{}, err
	}
	var r reply
	if err := json.NewDecoder(conn).Decode(&r); err != nil {
		return reply{}, fmt.Errorf("no answer from the daemon: %w", err)
	}
	return r, nil
}
