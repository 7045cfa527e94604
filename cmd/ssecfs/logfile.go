package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
)

// logFile is a mount's log: appended to, and once it would pass max bytes
// renamed to LOG.1 (LOG.1 to LOG.2, ..., keeping keep of them) and begun
// again, so that a mount left running for a year does not fill the disk.
type logFile struct {
	mu   sync.Mutex
	path string
	max  int64 // 0: never rotated
	keep int
	// std points the process's standard output and error at the current
	// file (the daemon's: a crash's stack trace lands in the log).
	std  bool
	f    *os.File // guarded by mu
	size int64    // guarded by mu
}

func openLogFile(path string, bound int64, keep int, std bool) (*logFile, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("log folder: %w", err)
	}
	l := &logFile{path: path, max: bound, keep: max(keep, 0), std: std}
	if err := l.open(); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *logFile) open() error {
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("log: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("log: %w", err)
	}
	if l.f != nil {
		l.f.Close()
	}
	l.f, l.size = f, st.Size()
	if l.std {
		_ = syscall.Dup2(int(f.Fd()), 1)
		_ = syscall.Dup2(int(f.Fd()), 2)
	}
	return nil
}

// Write appends p whole (one log record) to the current file, rotating
// first if p would take it past max. A rotation that fails leaves the
// record in the file as it is: a log line is never dropped for it.
func (l *logFile) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.max > 0 && l.size > 0 && l.size+int64(len(p)) > l.max {
		l.rotate()
	}
	n, err := l.f.Write(p)
	l.size += int64(n)
	return n, err
}

func (l *logFile) rotate() {
	if l.keep == 0 {
		os.Remove(l.path)
	} else {
		os.Remove(fmt.Sprintf("%s.%d", l.path, l.keep))
		for i := l.keep - 1; i >= 1; i-- {
			os.Rename(fmt.Sprintf("%s.%d", l.path, i), fmt.Sprintf("%s.%d", l.path, i+1))
		}
		os.Rename(l.path, l.path+".1")
	}
	_ = l.open() // on failure, the renamed file goes on taking the lines
}

func (l *logFile) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Close()
}
