package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// aws s3 cp: the raw-client reference. Every workload runs one aws
// command (cp, cp --recursive, sync) with aws's own defaults: 8 MiB parts,
// 10 requests at a time.

type awsTool struct {
	t   *Target
	rss int64
	n   int // downloads so far, for distinct file names
}

func newAWS() Tool { return &awsTool{} }

func (a *awsTool) Name() string { return "aws s3 cp" }

func (a *awsTool) Version(ctx context.Context) string {
	v, _, _ := strings.Cut(firstLine(ctx, awsCLI, "--version"), " ")
	return v
}

func (a *awsTool) Setup(ctx context.Context, t *Target) error { a.t = t; return nil }

func (a *awsTool) Mount(ctx context.Context) error {
	// The previous download would otherwise sit in the page cache and on
	// disk; a cold run starts without it.
	a.rss = 0
	return removeDownloads(a.t.Dir)
}

// run runs aws s3 with the target's endpoint, credentials and SSE-C key.
func (a *awsTool) run(ctx context.Context, args ...string) (string, error) {
	return a.exec(ctx, append(append(args[:1:1], sseArgs(a.t.Secret)...), args[1:]...)...)
}

// exec runs aws s3 args with the target's endpoint and credentials, and
// keeps its peak memory.
func (a *awsTool) exec(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, awsCLI, append([]string{"--endpoint-url", a.t.Server.Endpoint, "s3"}, args...)...)
	cmd.Env = a.t.Server.awsEnv()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, peak, err := outputPeak(cmd)
	a.rss = max(a.rss, peak)
	if err != nil {
		return string(out), fmt.Errorf("aws s3 %s: %v: %s", args[0], err, lastLines(stderr.String()+string(out), 3))
	}
	return string(out), nil
}

func (a *awsTool) url(key string) string { return "s3://" + a.t.Bucket + "/" + key }

// ReadPath downloads the object to a local file.
func (a *awsTool) ReadPath(ctx context.Context, key string) (string, error) {
	a.n++
	dst := filepath.Join(a.t.Dir, fmt.Sprintf("download-%d", a.n))
	_, err := a.run(ctx, "cp", "--only-show-errors", a.url(key), dst)
	return dst, err
}

func (a *awsTool) WriteFile(ctx context.Context, src, key string) error {
	_, err := a.run(ctx, "cp", "--only-show-errors", src, a.url(key))
	return err
}

func (a *awsTool) CopyIn(ctx context.Context, src, prefix string) error {
	_, err := a.run(ctx, "cp", "--recursive", "--only-show-errors", src, a.url(prefix+"/"))
	return err
}

func (a *awsTool) CopyOut(ctx context.Context, prefix, dst string) error {
	_, err := a.run(ctx, "cp", "--recursive", "--only-show-errors", a.url(prefix+"/"), dst)
	return err
}

// Sync is aws s3 sync, which uploads files whose size differs or whose
// mtime is newer than the object's; each upload is a line of output.
func (a *awsTool) Sync(ctx context.Context, src, prefix string) ([]string, error) {
	out, err := a.run(ctx, "sync", "--no-progress", src, a.url(prefix+"/"))
	return lines(out), err
}

// ListLong is aws s3 ls of the folder: name, size and time of each object.
func (a *awsTool) ListLong(ctx context.Context, prefix string) ([]string, error) {
	out, err := a.exec(ctx, "ls", a.url(prefix+"/"))
	return lines(out), err
}

// Find is aws s3 ls --recursive: every object under prefix.
func (a *awsTool) Find(ctx context.Context, prefix string) ([]string, error) {
	out, err := a.exec(ctx, "ls", "--recursive", a.url(prefix+"/"))
	return lines(out), err
}

// Durable: aws returns once the server has answered every upload; only
// the sync that every tool gets is left.
func (a *awsTool) Durable(ctx context.Context, want map[string]int64) error {
	_, err := command(ctx, "sync")
	return err
}

func (a *awsTool) PeakRSS() int64 { return a.rss }

func (a *awsTool) Unmount(ctx context.Context) error { return removeDownloads(a.t.Dir) }

func removeDownloads(dir string) error {
	files, _ := filepath.Glob(filepath.Join(dir, "download-*"))
	for _, f := range files {
		if err := os.Remove(f); err != nil {
			return err
		}
	}
	return nil
}
