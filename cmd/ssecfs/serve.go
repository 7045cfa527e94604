package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ssecfs/ssecfs/cache"
	"github.com/ssecfs/ssecfs/fs"
	"github.com/ssecfs/ssecfs/keys"
	"github.com/ssecfs/ssecfs/metrics"
	"github.com/ssecfs/ssecfs/stage"
	"github.com/ssecfs/ssecfs/store"
)

// serve runs the mount until it is unmounted. ready is told once whether
// the mount came up; every failure before that is one line with the fix.
// sd, if not nil, tells systemd (notify.go).
func serve(c *mountConfig, key *keys.Key, logOut io.Writer, ready func(error), sd *notifier) int {
	level, _ := parseLevel(c.logLevel)
	log := slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: level}))
	fail := func(err error) int {
		log.Error("mount failed", "err", err)
		ready(err)
		return 1
	}
	reqs := &metrics.Requests{}
	c.s3Options.observe = reqs.Observe
	st, err := c.s3Options.store(c.bucket, key, log, c.trace)
	if err != nil {
		return fail(err)
	}
	if err := preflight(c, st, log); err != nil {
		return fail(err)
	}
	blocks, closeDisk, err := openCaches(c, log)
	if err != nil {
		return fail(err)
	}
	defer closeDisk()
	jc, journal := journalConfig(c, key, st, log)
	alerts := newAlerter(c, log)
	defer alerts.stop()
	if jc != nil && alerts != nil {
		jc.GaveUp = func(key string, err error) { alerts.report("upload_failed", pathOf(c, key), err.Error()) }
	}
	known, err := openKnown(c, key, st.Endpoint(), log)
	if err != nil {
		return fail(err)
	}
	fsys, err := fs.New(fs.Options{
		Store: st, Cache: blocks, Log: log, Prefix: c.prefix, MetaTTL: c.metaTTL, ReadAhead: c.readAhead,
		UID: uint32(c.uid), GID: uint32(c.gid), OwnerFromMeta: c.ownerMeta, RefusePlaintext: c.refusePlain,
		Journal: jc, Known: known,
	})
	if jc != nil {
		clear(jc.Key) // the stage's cipher holds it now
	}
	if err != nil {
		return fail(err)
	}
	defer fsys.Close()
	mon := &monitor{c: c, fsys: fsys, mgr: fsys.Stage(), blocks: blocks, link: st.Link(), reqs: reqs,
		rate: metrics.NewRate(rateWindow), journal: journal, endpoint: st.Endpoint(), started: time.Now()}
	ctl, err := listenControl(c.mountpoint, log)
	if err != nil {
		return fail(fmt.Errorf("control socket: %w", err))
	}
	defer ctl.close()
	if c.metrics != "" {
		ml, err := metrics.Listen(c.metrics, c.metricsRemote)
		if err != nil {
			return fail(err)
		}
		defer ml.Close()
		go metrics.Serve(ml, metrics.NewCollector(mon.snapshot, reqs), log)
	}
	srv, err := fsys.Mount(c.mountpoint, fs.MountOptions{
		FsName: "ssecfs:" + c.bucket + "/" + c.prefix, AllowOther: c.allowOther,
		ReadOnly: c.readOnly, NoExec: c.noExec, Debug: c.debugFuse,
	})
	if err != nil {
		return fail(err)
	}
	log.Info("mounted", "pid", os.Getpid(), "bucket", c.bucket, "prefix", c.prefix, "mountpoint", c.mountpoint,
		"endpoint", st.Endpoint(), "journal", journal, "write_back", c.writeBack, "key", key.String())
	mon.answerControl(ctl, log)
	stopSampling := make(chan struct{})
	defer close(stopSampling)
	go mon.sample(stopSampling)
	go alerts.watchOffline(st.Link(), c.offlineAlert, stopSampling)
	ctl.unmount = srv.Unmount
	go ctl.serve()
	// Signals are handled before the mount is reported ready: a SIGHUP or
	// SIGTERM sent right after "ssecfs mount" returns must not kill the
	// daemon with its default action.
	handleSignals(c, srv, log)
	ready(nil)
	where := fmt.Sprintf("s3://%s/%s at %s", c.bucket, c.prefix, c.mountpoint)
	if err := sd.ready("Mounted " + where); err != nil {
		log.Warn("cannot notify systemd", "err", err)
	}
	stopStatus := mon.tellStatus(sd, where)
	srv.Wait()
	stopStatus()
	code := 0
	if mgr := fsys.Stage(); mgr != nil {
		// The kernel sends nothing more, not even the release of a file
		// closed just before a lazy unmount ended.
		mgr.Abandon()
		if err := drain(mgr, log, sd); err != nil {
			code = 1
		}
	} else {
		sd.stopping("Unmounted")
	}
	final := mon.status()
	final.OK = code == 0
	ctl.finish(final)
	log.Info("unmounted", "mountpoint", c.mountpoint)
	return code
}

// openCaches opens the block cache over its disk tier (if any: only random
// reads of big files are slower without it) and bounds the heap; the
// function returned closes the disk tier.
func openCaches(c *mountConfig, log *slog.Logger) (*cache.Cache, func(), error) {
	// Keep the heap near what the caches are allowed, unless metadata
	// outgrows them (memlimit.go). The limit is soft: upload buffers (64
	// MiB for a multipart upload, as much for a stream's parts in flight)
	// beside a big read make the collector run more often, nothing fails.
	go keepMemoryLimit(c.cacheSize + c.readAhead + cache.Spares*c.blockSize + 32<<20)
	disk, err := openDiskCache(c)
	if err != nil {
		log.Warn("no disk cache", "err", err)
	}
	closeDisk := func() {
		if disk != nil {
			disk.Close()
		}
	}
	blocks, err := cache.New(cache.Options{
		Size: c.cacheSize, BlockSize: c.blockSize, Parallel: int(max(c.readAhead/c.blockSize, 1)),
		// One fetch may be retried (minio-go's retries, then a cut body's):
		// its bound leaves room for them, a stalled connection included.
		Timeout: c.timeout * time.Duration(c.retries+2),
		Disk:    disk,
		Log:     log,
	})
	if err != nil {
		closeDisk()
		return nil, nil, err
	}
	return blocks, closeDisk, nil
}

// journalConfig is the stage's configuration and the journal folder, or
// nil and "" on a read-only mount.
func journalConfig(c *mountConfig, key *keys.Key, st *store.S3, log *slog.Logger) (*stage.Config, string) {
	if c.readOnly {
		return nil, ""
	}
	scope := journalScope(c, st.Endpoint())
	journal := journalFor(c, scope)
	return &stage.Config{
		Dir: journal, Key: key.JournalKey(scope),
		Log: log, Window: c.writeBack, Cap: journalCap(c, journal), Stall: c.uploadStall, Parallel: c.uploadParallel,
		Attempts: 5, RetryCap: c.backoffMax, DrainTimeout: c.drainTimeout,
	}, journal
}

// handleSignals unmounts on SIGINT and SIGTERM (lazily if files are open)
// and logs SIGHUP.
func handleSignals(c *mountConfig, srv *fs.Server, log *slog.Logger) {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		for s := range sigs {
			if s == syscall.SIGHUP {
				log.Info("SIGHUP ignored: ssecfs has no configuration to reload")
				continue
			}
			log.Info("unmounting", "signal", s.String())
			if err := srv.Unmount(); err != nil {
				// Files are open: detach now, finish when they are closed.
				log.Warn("mount busy; detaching it lazily", "err", err)
				if err := lazyUnmount(c.mountpoint); err != nil {
					log.Error("unmount failed; still serving", "err", err)
				}
			}
		}
	}()
}

// drain uploads what waits before the daemon exits, saying what it does.
// Nothing is dropped: what cannot be uploaded stays in the journal for the
// next mount. Under systemd, every 10 s in which uploads moved asks for 30 s
// more than TimeoutStopSec=; a stuck upload is not given more.
func drain(mgr *stage.Manager, log *slog.Logger, sd *notifier) error {
	n := mgr.Stats().Files
	if n == 0 {
		sd.stopping("Unmounted; nothing waited for upload")
		return nil
	}
	log.Info("uploading the files still waiting before exit", "files", n)
	sd.stopping(fmt.Sprintf("Uploading %d files before exit", n))
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(10 * time.Second)
		defer t.Stop()
		moved := mgr.Progress()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				left := mgr.Stats().Files
				log.Info("still uploading before exit", "files", left)
				if p := mgr.Progress(); p != moved {
					moved = p
					sd.extend(30*time.Second, fmt.Sprintf("Uploading %d files before exit", left))
				}
			}
		}
	}()
	err := mgr.Drain(context.Background())
	close(done)
	if err != nil {
		log.Error("exiting with files not uploaded; they stay in the journal and are uploaded by the next mount", "err", err)
		return err
	}
	log.Info("all files uploaded")
	return nil
}
