# ssecfs: build, test, demo, benchmark.
# Go lives in /usr/local/go on the reference machine; keep it on PATH.
export PATH := /usr/local/go/bin:$(PATH)

VERSION := $(shell git describe --always --dirty 2>/dev/null || echo dev)
GOFLAGS_BUILD := -trimpath -ldflags "-s -w -X main.version=$(VERSION)"

.PHONY: install install-check uninstall bench-backup bench-first bench-scale bench-memory bench-nightly build unit ns-as-user test integration demo demo-stop bench bench-quick servers servers-down vet clean soak crash stress fuzz fuzz-quick fuzz-run

build:
	go build $(GOFLAGS_BUILD) -o bin/ssecfs ./cmd/ssecfs

# make install [PREFIX=/usr/local] [DESTDIR=...]: the binary, its manual,
# bash completion, the systemd units, and mount.ssecfs in /sbin whatever
# PREFIX is (mount(8) looks for helpers there only).
PREFIX ?= /usr/local
BINDIR := $(PREFIX)/bin
INSTALLED := $(BINDIR)/ssecfs $(PREFIX)/share/man/man1/ssecfs.1 \
	$(PREFIX)/share/bash-completion/completions/ssecfs /sbin/mount.ssecfs \
	$(PREFIX)/lib/systemd/system/ssecfs@.service $(PREFIX)/lib/systemd/user/ssecfs@.service

install: build
	install -D -m 0755 bin/ssecfs $(DESTDIR)$(BINDIR)/ssecfs
	install -D -m 0644 dist/ssecfs.1 $(DESTDIR)$(PREFIX)/share/man/man1/ssecfs.1
	install -D -m 0644 dist/bash-completion/ssecfs $(DESTDIR)$(PREFIX)/share/bash-completion/completions/ssecfs
	sed 's|@BINDIR@|$(BINDIR)|g' dist/mount.ssecfs > bin/mount.ssecfs
	install -D -m 0755 bin/mount.ssecfs $(DESTDIR)/sbin/mount.ssecfs
	sed 's|@BINDIR@|$(BINDIR)|g' dist/systemd/ssecfs@.service > bin/ssecfs@.service
	install -D -m 0644 bin/ssecfs@.service $(DESTDIR)$(PREFIX)/lib/systemd/system/ssecfs@.service
	sed 's|@BINDIR@|$(BINDIR)|g' dist/systemd/user/ssecfs@.service > bin/ssecfs@.user.service
	install -D -m 0644 bin/ssecfs@.user.service $(DESTDIR)$(PREFIX)/lib/systemd/user/ssecfs@.service

uninstall:
	rm -f $(addprefix $(DESTDIR),$(INSTALLED))

# make test installs as a user would (the fstab tests use what mount(8)
# finds) and checks the units where systemd-analyze is installed.
install-check: install
	scripts/verify-units.sh $(PREFIX)

vet:
	go vet ./...
	go vet -tags integration ./integration/

# Fast tests: no network; the FUSE tests mount in-process (root).
unit:
	go test -race -count=1 ./...

# The namespace (package ns) needs neither root nor FUSE: its tests run
# as nobody, from a folder of their own (the checkout may be closed to
# other users).
ns-as-user:
	@d=$$(mktemp -d) && chmod 1777 $$d && go test -c -o $$d/ns.test ./ns && \
		cd $$d && setpriv --reuid=65534 --regid=65534 --clear-groups env TMPDIR=$$d HOME=$$d ./ns.test -test.count=1; \
		rc=$$?; rm -rf $$d; exit $$rc

# Everything: installs and starts the test servers (root, Debian 12), then
# unit, in-process FUSE and integration tests against Ceph RGW and MinIO.
test: servers vet unit ns-as-user fuzz-quick install-check integration

# Fuzzing what the bucket and the disk hand in: object names, metadata
# values, journal records, disk-cache blocks, the metadata kept between
# mounts. The seeds run with `unit`.
# `make fuzz` fuzzes each target FUZZTIME (2m); `fuzz-quick` (in `test`)
# runs a fixed number of inputs each, about 10 s here: a run stopped by a
# clock can end during the minimization of an input, which Go's fuzzer
# then reports as a failure ("context deadline exceeded"). One worker:
# the cores are shared. Minimizing an input is bounded to 1 s (Go's 60 s
# default took a whole quick run).
FUZZ_TARGETS := ns:FuzzObjectNames:100000 ns:FuzzObjectMetadata:100000 stage:FuzzJournalRecord:20000 cache:FuzzDiskBlock:5000 metadisk:FuzzRecords:20000 store:FuzzListXML:50000
FUZZTIME ?= 2m
fuzz:
	@$(MAKE) --no-print-directory fuzz-run FUZZ_FOR='$(FUZZTIME)'

fuzz-quick:
	@$(MAKE) --no-print-directory fuzz-run FUZZ_FOR=count

fuzz-run:
	@for t in $(FUZZ_TARGETS); do pkg=$${t%%:*}; rest=$${t#*:}; name=$${rest%%:*}; count=$${rest#*:}; \
		for=$(FUZZ_FOR); [ "$$for" = count ] && for=$${count}x; \
		echo "fuzzing $$name ($$for)"; \
		out=$$(go test -run '^$$' -fuzz "^$$name\$$" -fuzztime $$for -fuzzminimizetime 1s -parallel 1 ./$$pkg/ 2>&1); rc=$$?; \
		if [ $$rc -ne 0 ]; then echo "$$out"; exit 1; fi; echo "$$out" | tail -n 3; \
	done

integration: servers
	go test -tags integration -count=1 -timeout 25m ./integration/

servers:
	integration/servers/up.sh

servers-down:
	integration/servers/down.sh

# A local Ceph RGW, sample files uploaded with aws --sse-c, mounted at
# ./demo-mount. Stop with `make demo-stop`.
demo: build
	scripts/demo.sh

demo-stop:
	scripts/demo.sh stop

# Long reliability runs, outside `make test`: the randomized soak through
# the fault proxy (daemon built with -race) and the crash runs, on both
# servers.
soak: servers
	SSECFS_RACE=1 SSECFS_SOAK_OUTAGE=$${SSECFS_SOAK_OUTAGE:-10m} SSECFS_SOAK_OPS=$${SSECFS_SOAK_OPS:-3000} SSECFS_SOAK_WORKERS=$${SSECFS_SOAK_WORKERS:-4} \
		go test -tags integration -count=1 -v -timeout 0 -run 'TestSoakAgainstAShadowCopy|TestSoakAnOutageDuringACopyLosesNothing' ./integration/

crash: servers
	SSECFS_CRASH_RUNS=$${SSECFS_CRASH_RUNS:-20} SSECFS_CRASH_FILES=$${SSECFS_CRASH_FILES:-1000} \
		go test -tags integration -count=1 -v -timeout 0 -run 'TestCrashRunsLoseNothing' ./integration/

# Memory under stress (a folder of 100,000 objects, a 10 GiB file, 32 files
# open at once): the daemon's peak RSS against its documented bound.
stress: servers
	SSECFS_STRESS=1 go test -tags integration -count=1 -v -timeout 0 -run 'TestMemoryStaysBoundedUnderStress' ./integration/

bench:
	go run ./bench

# A first backup bigger than the journal over a home uplink: 2 GiB of
# 8 MiB files through a 64 MiB journal, the uplink capped at 20 MB/s, ssecfs
# against aws s3 cp --recursive through the same cap.
bench-backup:
	go run ./bench -tools ssecfs,aws -workloads backup -size 2G -uplink 20MB/s -runs 1 -ssecfs-options "--journal-size 64M"

# A first backup: rsync -a of 20,000 files of 16 KiB into an empty folder
# until they are all in the bucket, on RGW, against aws s3 sync and rclone.
bench-first:
	go run ./bench -tools ssecfs,aws,rclone -workloads first -servers rgw -runs 1 -timeout 15m

# cp -r of 10,000 and of 100,000 small files, until in the bucket: the
# files/s of the two, compared (about 25 minutes).
bench-scale:
	go run ./bench -tools ssecfs -workloads scale -servers rgw -runs 1 -timeout 40m

# Nightly backups at scale: rsync -a no-op, find, du -s and ls -lR of a kept
# tree of 100,000 files in 1,000 folders on RGW, at 20 ms and at 0 ms; the
# bucket is filled once (about 4 minutes) and kept between runs.
bench-nightly:
	go run ./bench -workloads nightly -servers rgw -latency 20ms -timeout 10m
	go run ./bench -workloads nightly -servers rgw -timeout 10m

bench-quick:
	go run ./bench -quick

# The daemon's memory per object walked by find and by a walk that stats
# every file (rsync, ls -lR), on an in-memory bucket of 100,000 and of
# 1,000,000 objects (fs/memory_test.go; needs root for FUSE and
# drop_caches). About 2 minutes.
bench-memory:
	go test -run '^$$' -bench WalkMemory -benchtime 1x -timeout 0 ./fs
	SSECFS_WALK_OBJECTS=1000000 go test -run '^$$' -bench WalkMemory -benchtime 1x -timeout 0 ./fs

clean:
	rm -rf bin
