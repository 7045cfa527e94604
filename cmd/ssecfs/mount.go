package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/ssecfs/ssecfs/cache"
	"github.com/ssecfs/ssecfs/keys"
	"github.com/ssecfs/ssecfs/metadisk"
	"github.com/ssecfs/ssecfs/stage"
	"github.com/ssecfs/ssecfs/store"
	"golang.org/x/sys/unix"
)

type mountConfig struct {
	bucket, prefix, mountpoint string
	s3Options
	keySource
	noKeyCheck bool

	foreground  bool
	readOnly    bool
	nonEmpty    bool
	uid, gid    int
	allowOther  bool
	noExec      bool
	ownerMeta   bool
	refusePlain bool

	cacheSize, blockSize, readAhead int64
	diskCacheSize                   int64
	cacheDir                        string
	metaTTL                         time.Duration
	metaCacheSize                   int64
	noMetaCache                     bool

	writeBack      time.Duration
	journalDir     string
	journalSize    int64
	uploadStall    time.Duration
	backoffMax     time.Duration
	drainTimeout   time.Duration
	uploadParallel int

	logLevel, logFile string
	logMaxSize        int64
	logKeep           int
	trace, debugFuse  bool

	metrics       string // --metrics ADDR
	metricsRemote bool
	onFailure     string        // --on-failure CMD
	failureEvery  time.Duration // at most one run of CMD per this
	offlineAlert  time.Duration // offline this long is a failure for CMD

	args []string // as given, for the daemon to parse again
}

const mountUsage = `Usage: ssecfs mount [options] BUCKET[/PREFIX] MOUNTPOINT

Mounts the bucket (or only the objects under PREFIX) at MOUNTPOINT and
returns once the mount is ready; the daemon keeps serving in the background
until "ssecfs umount MOUNTPOINT". Options may come before or after the
arguments.

The key (the 32-character secret, base64 of 32 bytes or 64 hex digits)
comes from:
  --barbican-secret HREF  OpenStack Barbican, logging in with clouds.yaml
                          (--os-cloud, OS_CLOUD) or the OS_* variables
  --key-file FILE         a file holding the key; "-" reads standard input
                          (a terminal is asked, without echo)
  --key-command CMD       the standard output of CMD (sh -c): pass,
                          secret-tool, systemd-creds
  --key-env VAR           an environment variable holding the key
There is no option that takes the key itself: it would show in ps.

Server and credentials work as for "aws s3": AWS_ACCESS_KEY_ID and
AWS_SECRET_ACCESS_KEY, or a profile in ~/.aws/credentials and ~/.aws/config
(region, endpoint_url and ca_bundle are read from the profile too).

Options:
`

// mountFlags are ssecfs mount's options, set into c. Each also has an -o
// spelling (fstab.go).
func mountFlags(c *mountConfig) *flag.FlagSet {
	f := flag.NewFlagSet("mount", flag.ContinueOnError)
	f.SetOutput(io.Discard) // errors are reported by the caller, in one line
	c.s3Options.add(f)
	c.keySource.add(f)
	f.BoolVar(&c.noKeyCheck, "no-key-check", false, "mount even if the key opens none of the objects sampled at mount time")
	f.BoolVar(&c.foreground, "foreground", false, "stay in the foreground; log to standard error")
	f.BoolVar(&c.foreground, "f", false, "short for --foreground")
	f.BoolVar(&c.readOnly, "read-only", false, "mount read-only")
	f.BoolVar(&c.nonEmpty, "nonempty", false, "mount over a MOUNTPOINT that holds files (they are hidden until unmount)")
	f.Var(idValue{&c.uid, "uid"}, "uid", "owner shown for files: a `USER` name or number")
	f.Var(idValue{&c.gid, "gid"}, "gid", "group shown for files: a `GROUP` name or number")
	f.BoolVar(&c.allowOther, "allow-other", false, "let other users access the mount (non-root needs user_allow_other in /etc/fuse.conf)")
	f.BoolVar(&c.ownerMeta, "owner-from-metadata", false, "show the uid/gid stored in object metadata (x-amz-meta-uid/gid) as the owner")
	f.BoolVar(&c.refusePlain, "refuse-plaintext", false, "hide objects stored without SSE-C (once a HEAD shows them) and refuse to open them; by default they show as read-only files")
	// Defaults sized for a daemon of at most ~300 MiB: the cache, the
	// read-ahead blocks in flight, part buffers and the runtime.
	c.cacheSize, c.blockSize, c.readAhead = 160<<20, 8<<20, 64<<20
	f.Var(sizeValue{&c.cacheSize}, "cache-size", "memory for cached file data (a `SIZE` like 256M or 1G)")
	f.Var(sizeValue{&c.blockSize}, "block-size", "unit of cached data and of ranged reads (`SIZE`)")
	c.diskCacheSize = -1
	f.Var(sizeValue{&c.diskCacheSize}, "disk-cache-size", "local disk for files read at random that do not fit in memory, encrypted (`SIZE`; default: 4G or a quarter of the free space, whichever is less; 0 = off)")
	f.StringVar(&c.cacheDir, "cache-dir", "", "`DIR` for the disk cache (default "+defaultCacheRoot()+")")
	f.Var(sizeValue{&c.readAhead}, "read-ahead", "how far a sequential reader is fetched ahead, in parallel (`SIZE`; 0 = off)")
	f.DurationVar(&c.metaTTL, "meta-ttl", 30*time.Second, "how long listings and attributes are trusted; others' changes show after this (while the server cannot be reached, the last ones are used; 0 keeps none)")
	c.metaCacheSize = 512 << 20
	f.Var(sizeValue{&c.metaCacheSize}, "meta-cache-size", "local disk for what the mount learnt of objects' metadata, kept between mounts and encrypted, so that a walk of an unchanged tree asks the server only for listings (`SIZE`; in "+defaultMetaRoot()+")")
	f.BoolVar(&c.noMetaCache, "no-meta-cache", false, "keep no metadata between mounts: a fresh mount asks the server for every file's metadata")
	f.DurationVar(&c.writeBack, "write-back", 5*time.Second, "how long a closed file waits before upload, so that a rename or chmod right after costs no second upload; 0 uploads before close returns")
	f.StringVar(&c.journalDir, "journal-dir", "", "`DIR` for files waiting for upload, encrypted (default "+defaultJournalRoot()+")")
	f.Var(sizeValue{&c.journalSize}, "journal-size", "disk space the journal may use (`SIZE`; default: 16G or half the free space, whichever is less); when it is full, writers wait for uploads to make room")
	f.DurationVar(&c.uploadStall, "upload-stall", stage.DefaultStall, "how long writers wait for room in a full journal while no upload succeeds, before they get ENOSPC")
	f.IntVar(&c.uploadParallel, "uploads", 8, "files uploaded at once")
	f.DurationVar(&c.drainTimeout, "drain-timeout", stage.DefaultDrainTimeout, "at unmount, how long to wait while no upload succeeds before exiting with the files still waiting left in the journal (the next mount uploads them)")
	f.DurationVar(&c.backoffMax, "upload-backoff-max", stage.DefaultRetryCap, "longest wait between two tries of an upload that failed on the network (they are tried for as long as the mount lives, and at once when the server answers again)")
	f.StringVar(&c.logLevel, "log-level", "info", "debug, info, warn or error")
	f.StringVar(&c.logFile, "log-file", "", "log destination (default: standard error with --foreground, else "+defaultLogDir()+"/MOUNTPOINT.log)")
	c.logMaxSize = 16 << 20
	f.Var(sizeValue{&c.logMaxSize}, "log-max-size", "the log file's size (`SIZE`) at which it is rotated to LOG.1 (0 = never)")
	f.IntVar(&c.logKeep, "log-keep", 3, "rotated log files kept (LOG.1 ... LOG.`N`)")
	f.StringVar(&c.metrics, "metrics", "", "serve Prometheus metrics at http://`ADDR`/metrics: HOST:PORT on loopback (127.0.0.1:9101), or unix:PATH")
	f.BoolVar(&c.metricsRemote, "metrics-remote", false, "let --metrics listen on an address other machines can reach")
	f.StringVar(&c.onFailure, "on-failure", "", "run `CMD` (sh -c) when an upload fails for good or the mount stays offline past --offline-alert; SSECFS_EVENT, SSECFS_PATH, SSECFS_REASON and SSECFS_FOLDED say what happened")
	f.DurationVar(&c.failureEvery, "on-failure-every", 5*time.Minute, "run --on-failure at most once per this; the failures in between are folded into the next run")
	f.DurationVar(&c.offlineAlert, "offline-alert", time.Hour, "how long the server may not answer before --on-failure is run")
	f.BoolVar(&c.trace, "trace", false, "log every S3 request (never its headers) at debug level")
	f.BoolVar(&c.debugFuse, "debug-fuse", false, "log every FUSE request at debug level")
	f.BoolVar(&c.noExec, "noexec", false, "programs on the mount cannot be run (the mount is always nosuid and nodev)")
	return f
}

func parseMount(args []string) (*mountConfig, error) {
	c := &mountConfig{args: args, uid: os.Getuid(), gid: os.Getgid()}
	f := mountFlags(c)
	pos, err := parseInterleaved(f, args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Print(mountUsage)
		printFlags(os.Stdout, f)
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	if len(pos) != 2 {
		return nil, errors.New("expected BUCKET[/PREFIX] and MOUNTPOINT")
	}
	if c.bucket, c.prefix, err = parseTarget(pos[0]); err != nil {
		return nil, err
	}
	if c.mountpoint, err = filepath.Abs(pos[1]); err != nil {
		return nil, err
	}
	// The daemon runs in /: paths it opens must not be relative.
	for _, p := range []*string{&c.logFile, &c.journalDir, &c.cacheDir, &c.caFile} {
		if *p != "" {
			if *p, err = filepath.Abs(*p); err != nil {
				return nil, err
			}
		}
	}
	if os.Getenv(daemonEnv) == "" {
		if err := c.keySource.check(); err != nil {
			return nil, err
		}
	}
	if c.readAhead > c.cacheSize/2 {
		return nil, fmt.Errorf("--read-ahead %s must be at most half of --cache-size %s", formatSize(c.readAhead), formatSize(c.cacheSize))
	}
	if _, err := parseLevel(c.logLevel); err != nil {
		return nil, err
	}
	return c, nil
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("--log-level %q: want debug, info, warn or error", s)
	}
	return l, nil
}

func openLog(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("log folder: %w", err)
	}
	return os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
}

func runMount(args []string) int {
	c, err := parseMount(args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(os.Stderr, "ssecfs mount: %v (see ssecfs mount --help)\n", err)
		return 2
	}
	// No core dumps, no ptrace by other processes of this user: the key is
	// in this process's memory from here on.
	_ = keys.ProtectProcess()
	if os.Getenv(daemonEnv) != "" {
		return runDaemon(c)
	}
	if err := checkMountpoint(c.mountpoint, c.nonEmpty); err != nil {
		fmt.Fprintln(os.Stderr, "ssecfs mount:", err)
		return 1
	}
	// Taken before anything runs a child (--key-command, the daemon): the
	// process systemd watches is this one, with --foreground.
	sd, err := newNotifier()
	if err != nil {
		fmt.Fprintln(os.Stderr, "ssecfs mount: warning:", err)
	}
	defer sd.close()
	key, err := c.keySource.read()
	if err != nil {
		fmt.Fprintln(os.Stderr, "ssecfs mount:", err)
		return 1
	}
	defer key.Wipe()
	if !c.foreground {
		return startDaemon(c, key)
	}
	var out io.Writer = os.Stderr
	if c.logFile != "" {
		f, err := openLogFile(c.logFile, c.logMaxSize, c.logKeep, false)
		if err != nil {
			fmt.Fprintln(os.Stderr, "ssecfs mount:", err)
			return 1
		}
		defer f.Close()
		out = f
	}
	return serve(c, key, out, func(err error) {
		if err != nil {
			fmt.Fprintln(os.Stderr, "ssecfs mount:", err)
		}
	}, sd)
}

func checkMountpoint(mp string, nonEmpty bool) error {
	st, err := os.Stat(mp)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("mountpoint %s does not exist", mp)
	case errors.Is(err, syscall.ENOTCONN):
		// "Transport endpoint is not connected": the daemon is gone.
		return fmt.Errorf("%s is still mounted but its daemon is gone (it crashed or was killed): run \"ssecfs umount %s\", then mount again; the files it had not uploaded are in the journal and the new mount uploads them", mp, mp)
	case err != nil:
		return fmt.Errorf("mountpoint %s: %w", mp, err)
	case !st.IsDir():
		return fmt.Errorf("mountpoint %s is not a directory", mp)
	}
	if mounted, err := isMounted(mp); err == nil && mounted {
		return fmt.Errorf("%s is already a mountpoint", mp)
	}
	if !nonEmpty {
		// FUSE would mount over the files and hide them: almost always a
		// mistyped path. A folder we cannot list is left to the mount.
		var names []string
		if d, err := os.Open(mp); err == nil {
			names, _ = d.Readdirnames(1)
			d.Close()
		}
		if len(names) > 0 {
			return fmt.Errorf("mountpoint %s is not empty; its files would be hidden under the mount (give --nonempty to mount over them)", mp)
		}
	}
	return nil
}

// isMounted reports whether mp is a mountpoint now, from /proc/self/mountinfo.
func isMounted(mp string) (bool, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && unescapeMount(f[4]) == mp {
			return true, nil
		}
	}
	return false, nil
}

// unescapeMount undoes the octal escapes of mountinfo ("\040" for space).
func unescapeMount(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v byte
			ok := true
			for _, ch := range s[i+1 : i+4] {
				if ch < '0' || ch > '7' {
					ok = false
					break
				}
				v = v*8 + byte(ch-'0')
			}
			if ok {
				b.WriteByte(v)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// journalScope names the endpoint, bucket and prefix of a journal: its
// folder's name and its key derive from it, so both must use this one
// string (a restart that found its journal and could not open it would
// leave its files there).
func journalScope(c *mountConfig, endpoint string) string {
	return endpoint + "\n" + c.bucket + "\n" + c.prefix
}

// journalFor is the journal folder of this bucket and prefix: one per
// endpoint, bucket and prefix, so that a remount finds what a crash left.
func journalFor(c *mountConfig, scope string) string {
	root := c.journalDir
	if root == "" {
		root = defaultJournalRoot()
	}
	return filepath.Join(root, scopeDir(c, scope))
}

// scopeDir names the folder of a scope: the bucket, for people, and a hash
// of the whole scope.
func scopeDir(c *mountConfig, scope string) string {
	h := sha256.Sum256([]byte(scope))
	return c.bucket + "-" + hex.EncodeToString(h[:6])
}

// openKnown opens the metadata kept between mounts of this scope, or nil
// with --no-meta-cache or --meta-ttl 0 (nothing would be trusted).
func openKnown(c *mountConfig, key *keys.Key, endpoint string, log *slog.Logger) (*metadisk.Disk, error) {
	if c.noMetaCache || c.metaTTL <= 0 || c.metaCacheSize <= 0 {
		return nil, nil
	}
	scope := journalScope(c, endpoint)
	k := key.MetadataKey(scope)
	defer clear(k)
	return metadisk.Open(metadisk.Options{Dir: filepath.Join(defaultMetaRoot(), scopeDir(c, scope)), Key: k,
		Scope: scope, MaxBytes: c.metaCacheSize, Log: log})
}

// openDiskCache opens the disk tier of the read cache: --disk-cache-size,
// or 4 GiB or a quarter of the free space, whichever is less; nil when off.
func openDiskCache(c *mountConfig) (*cache.Disk, error) {
	root := c.cacheDir
	if root == "" {
		root = defaultCacheRoot()
	}
	size := c.diskCacheSize
	if size < 0 {
		size = 4 << 30
		if err := os.MkdirAll(root, 0o700); err == nil {
			var st unix.Statfs_t
			if err := unix.Statfs(root, &st); err == nil {
				size = min(size, int64(st.Bavail)*st.Bsize/4)
			}
		}
	}
	if size < 2*c.blockSize {
		return nil, nil
	}
	d, err := cache.OpenDisk(root, size, cache.PieceSize)
	if err != nil {
		return nil, fmt.Errorf("%w (choose another place with --cache-dir, or turn it off with --disk-cache-size 0)", err)
	}
	return d, nil
}

// journalCap is --journal-size, or 16 GiB or half the free space.
func journalCap(c *mountConfig, dir string) int64 {
	if c.journalSize > 0 {
		return c.journalSize
	}
	limit := int64(16 << 30)
	var st unix.Statfs_t
	if err := unix.Statfs(filepath.Dir(dir), &st); err == nil {
		limit = min(limit, int64(st.Bavail)*st.Bsize/2)
	}
	return limit
}

func lazyUnmount(mp string) error {
	if os.Geteuid() == 0 {
		return unix.Unmount(mp, unix.MNT_DETACH)
	}
	return exec.Command("fusermount3", "-u", "-z", mp).Run()
}

// preflight checks, before anything is mounted, everything a user can get
// wrong, each failure one line with what to fix.
func preflight(c *mountConfig, st *store.S3, log *slog.Logger) error {
	timeout := min(c.timeout, 30*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	where := fmt.Sprintf("bucket %q at %s", c.bucket, st.Endpoint())
	if err := st.CheckBucket(ctx); err != nil {
		return explain(err, where, timeout)
	}
	if c.noKeyCheck {
		log.Warn("key check skipped (--no-key-check)")
		return nil
	}
	v, err := store.VerifyKey(ctx, st, c.prefix, 16)
	if err != nil {
		return explain(err, where, timeout)
	}
	switch {
	case v.Proven:
		log.Info("key verified", "objects_checked", v.Checked)
	case v.Checked == 0:
		log.Info("no object to verify the key against yet")
	default:
		log.Warn("key not verified: the objects checked are stored without SSE-C", "plaintext", v.Plain)
	}
	return nil
}

func explain(err error, where string, timeout time.Duration) error {
	switch {
	case errors.Is(err, store.ErrNoBucket):
		return fmt.Errorf("%s: no such bucket", where)
	case errors.Is(err, store.ErrBadCredentials):
		return fmt.Errorf("%s: the server refused the credentials; check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or --profile (%v)", where, err)
	case errors.Is(err, store.ErrAccessDenied):
		return fmt.Errorf("%s: access denied; the credentials need the right to list and read the bucket (%v)", where, err)
	case errors.Is(err, store.ErrInsecure):
		return fmt.Errorf("%s: the server's certificate does not verify; give its CA with --ca-file if it is private (%v)", where, err)
	case errors.Is(err, store.ErrWrongKey):
		return fmt.Errorf("%s: wrong key? %v; check --key-file/--key-env, or mount anyway with --no-key-check", where, err)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s: no answer within %s; is the endpoint right and the server up?", where, timeout)
	case errors.Is(err, store.ErrUnavailable):
		return fmt.Errorf("%s: cannot reach the server (%v)", where, err)
	}
	return fmt.Errorf("%s: %v", where, err)
}
