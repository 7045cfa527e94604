#!/usr/bin/env bash
# install.sh [all|packages|openstack|minio]: install what the integration
# tests need.
#
#   packages  Debian packages (Ceph RGW, Keystone + Barbican, FUSE, reference
#             clients), /dev/fuse permissions and the unprivileged test user.
#   openstack only the Debian packages for Keystone and Barbican (openstack.sh).
#   minio     the MinIO server binary at $STATE/bin/minio, built from the Go
#             module proxy (MinIO ships no Debian package; it is AGPL and is
#             only ever run as an external test server, never imported).
#   all       both (default).
#
# Idempotent and quick when everything is present: no apt-get update, no
# build. Must work as root on a fresh Debian 12 machine (CI).
set -euo pipefail
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"

# Pinned so that every run tests against the same server behaviour.
MINIO_MODULE=github.com/minio/minio
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
MINIO_BIN=$STATE/bin/minio

PACKAGES=(
	# Ceph RGW, one node: monitor, OSD, gateway, CLI tools (ceph, radosgw-admin).
	ceph-mon ceph-osd radosgw ceph-common
	# FUSE userspace: fusermount3 for non-root mounts.
	fuse3
	# Reference clients used to check interoperability of SSE-C objects.
	awscli rclone s3fs
	# TLS material, readiness probes (curl --aws-sigv4), process tools.
	openssl curl ca-certificates procps util-linux psmisc passwd rsync
	# The compatibility suite: backup and file tools run on the mount as
	# their users run them (integration/tools_test.go, docs/TOOLS.md).
	restic borgbackup duplicity git sqlite3 tar
)

# Keystone and Barbican for openstack.sh, served by waitress (no apache or
# uwsgi; --no-install-recommends keeps them out), and the CLI to store secrets.
OPENSTACK_PACKAGES=(
	python3-keystone python3-barbican python3-barbicanclient python3-openstackclient
	python3-waitress pwgen
)

TEST_USER=ssecfs-test

# missing_packages PKG...: those of PKG that are not installed.
missing_packages() {
	local p status
	for p in "$@"; do
		status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
		[ "$status" = installed ] || printf '%s\n' "$p"
	done
}

# install_debs PKG...: install those of PKG that are missing.
install_debs() {
	local missing
	mapfile -t missing < <(missing_packages "$@")
	if [ ${#missing[@]} -gt 0 ]; then
		# Two parallel runs would otherwise race for the dpkg lock.
		lock_or_wait "$STATE/.install.lock"
		mapfile -t missing < <(missing_packages "$@")
	fi
	if [ ${#missing[@]} -gt 0 ]; then
		log "installing: ${missing[*]}"
		export DEBIAN_FRONTEND=noninteractive
		# Only update when something is missing: the lists are slow to fetch
		# and a second run must stay fast.
		# Wait for a dpkg lock held by someone else instead of failing at once.
		apt-get -o DPkg::Lock::Timeout=600 update -qq
		apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends \
			"${missing[@]}" >/dev/null
	fi
}

install_packages() {
	install_debs "${PACKAGES[@]}" "${OPENSTACK_PACKAGES[@]}"
	setup_host
}

setup_host() {
	# go-fuse mounts as non-root go through fusermount3, which opens /dev/fuse
	# as the calling user. Debian's udev rule makes it 0666; machines without
	# udev (containers, this CI) leave it 0600.
	if [ -c /dev/fuse ]; then
		if [ "$(stat -c %a /dev/fuse)" != 666 ]; then
			chmod 0666 /dev/fuse
		fi
	else
		log "warning: /dev/fuse does not exist; FUSE mount tests will fail"
	fi
	# An unprivileged account for tests of non-root mounts (runuser -u).
	if ! id "$TEST_USER" >/dev/null 2>&1; then
		log "creating user $TEST_USER"
		useradd --system --create-home --shell /bin/bash "$TEST_USER"
	fi
	# The state directory holds the CA certificate that unprivileged clients
	# need to read (keys and credentials stay 0600).
	mkdir -p "$STATE"
	chmod 0755 "$STATE"
}

# minio_ok BIN: BIN is a MinIO binary built from the pinned module version.
minio_ok() {
	[ -x "$1" ] || return 1
	go version -m "$1" 2>/dev/null |
		grep -Eq "^[[:space:]]+mod[[:space:]]+${MINIO_MODULE}[[:space:]]+${MINIO_VERSION}([[:space:]]|$)"
}

install_minio() {
	minio_ok "$MINIO_BIN" && return 0
	command -v go >/dev/null || die "go not found (expected /usr/local/go/bin/go)"
	lock_or_wait "$STATE/bin/.minio-build.lock"
	# Another run may have finished the build while we waited for the lock.
	minio_ok "$MINIO_BIN" && return 0
	# A binary of exactly the pinned version built elsewhere on this machine
	# saves the ~3 minute build (e.g. SSECFS_MINIO_PREBUILT=/tmp/minio-bin/minio).
	if [ -n "${SSECFS_MINIO_PREBUILT:-}" ] && minio_ok "$SSECFS_MINIO_PREBUILT"; then
		log "using prebuilt MinIO $SSECFS_MINIO_PREBUILT"
		cp "$SSECFS_MINIO_PREBUILT" "$MINIO_BIN.tmp"
		mv "$MINIO_BIN.tmp" "$MINIO_BIN"
		return 0
	fi
	log "building MinIO $MINIO_VERSION (takes ~3 minutes on 2 cores)"
	local build=$STATE/bin/.build
	rm -rf "$build"
	mkdir -p "$build"
	# GOBIN to a scratch dir and rename: an interrupted build never leaves a
	# partial binary where the next run would take it as installed.
	# -buildvcs=false: the build runs inside this git work tree.
	(cd "$build" && GOBIN=$build GOFLAGS=-buildvcs=false go install "$MINIO_MODULE@$MINIO_VERSION") \
		>"$STATE/bin/minio-build.log" 2>&1 ||
		{ tail -n 30 "$STATE/bin/minio-build.log" >&2; die "MinIO build failed"; }
	mv "$build/minio" "$MINIO_BIN"
	rm -rf "$build"
	minio_ok "$MINIO_BIN" || die "built MinIO binary does not report $MINIO_VERSION"
	log "MinIO installed at $MINIO_BIN"
}

main() {
	need_root
	mkdir -p "$STATE/bin"
	case ${1:-all} in
	packages) install_packages ;;
	openstack) install_debs "${OPENSTACK_PACKAGES[@]}" ;;
	minio) install_minio ;;
	all)
		install_packages
		install_minio
		;;
	*) die "usage: $0 [all|packages|openstack|minio]" ;;
	esac
}

main "$@"
