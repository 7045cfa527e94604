# shellcheck shell=bash
# common.sh: helpers sourced by the integration test server scripts.
#
# Not executable on purpose: `source "$(dirname "$0")/common.sh"`.
# Everything the scripts create lives under $STATE so that a test run never
# touches /etc/ceph, /var/lib/ceph or any other system-wide location, and so
# that `rm -rf "$STATE"` is a complete reset.

# The state directory survives reboots on Debian (/var/tmp is not a tmpfs),
# which lets the Ceph cluster and the MinIO build be reused across runs.
STATE=${SSECFS_TEST_STATE:-/var/tmp/ssecfs-test}
export SSECFS_TEST_STATE=$STATE

SCRIPT_NAME=$(basename "$0" .sh)

# Go is not a Debian package on these machines.
export PATH=/usr/local/go/bin:$PATH:/usr/sbin:/sbin

TLS_DIR=$STATE/tls
CA_CRT=$TLS_DIR/ca.crt

log() {
	printf '[%s] %s: %s\n' "$(date +%H:%M:%S)" "$SCRIPT_NAME" "$*" >&2
}

die() {
	log "ERROR: $*"
	exit 1
}

need_root() {
	[ "$(id -u)" -eq 0 ] || die "must run as root (apt-get, /dev/fuse, daemons)"
}

# lock_or_wait FILE: serialise concurrent runs of the same script (make test
# and a benchmark may both call up.sh). The lock is held on a file descriptor
# until the script exits; start_daemon closes it in the daemons so that a
# long-running server never keeps the lock.
lock_or_wait() {
	local file=$1 fd
	mkdir -p "$(dirname "$file")"
	exec {fd}>"$file"
	if ! flock -n "$fd"; then
		log "waiting for another run to release $file"
		flock -w 900 "$fd" || die "timed out waiting for lock $file"
	fi
}

# ---------------------------------------------------------------------------
# pid files
#
# A pid file holds three lines: the PID, the process start time (field 22 of
# /proc/PID/stat, in clock ticks since boot) and the command line. A PID alone
# can be reused by an unrelated process after a reboot or a crash; checking
# start time and command line as well means we never signal a process that we
# did not start.

# proc_starttime PID: print the start time of PID, or nothing.
proc_starttime() {
	local stat rest
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	# comm (field 2) may contain spaces and parentheses: cut after the last ')'.
	rest=${stat##*) }
	# shellcheck disable=SC2086 # word splitting wanted
	set -- $rest
	# $1 is field 3 (state); field 22 is therefore $20. A zombie has exited.
	[ "$1" != Z ] || return 1
	printf '%s\n' "${20}"
}

# proc_cmdline PID: the command line of PID with arguments joined by spaces.
proc_cmdline() {
	tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline" | sed 's/ $//'
}

# pid_of PIDFILE: print the PID if the process recorded in PIDFILE is still
# the one we started; return 1 otherwise.
pid_of() {
	local file=$1 pid start cmd now
	[ -s "$file" ] || return 1
	{ read -r pid && read -r start && IFS= read -r cmd; } <"$file" || return 1
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	now=$(proc_starttime "$pid") || return 1
	[ "$now" = "$start" ] || return 1
	[ "$(proc_cmdline "$pid")" = "$cmd" ] || return 1
	printf '%s\n' "$pid"
}

is_running() {
	pid_of "$1" >/dev/null
}

# start_daemon PIDFILE LOGFILE CMD [ARGS...]: start CMD detached from our
# session (setsid: no SIGHUP or terminal signals from the caller, e.g. a
# Ctrl-C on `make test`), stdin from /dev/null, output appended to LOGFILE, and
# record it in PIDFILE. The daemon must stay in the foreground (-f) so that
# the PID we record is the daemon itself.
start_daemon() {
	local pidfile=$1 logfile=$2 pid start fd
	shift 2
	mkdir -p "$(dirname "$pidfile")" "$(dirname "$logfile")"
	printf '\n==== %s starting: %s\n' "$(date -Is)" "$*" >>"$logfile"
	(
		# Close every inherited descriptor above stderr (lock files, pipes of
		# a caller such as `go test`): a daemon holding them would keep locks
		# held and make callers wait for EOF forever.
		for fd in /proc/"$BASHPID"/fd/*; do
			fd=${fd##*/}
			if [ "$fd" -gt 2 ]; then eval "exec $fd>&-"; fi
		done
		# This subshell is not a process group leader (no job control in a
		# script), so setsid and nohup exec in place and the daemon keeps the
		# PID that $! reports.
		exec setsid nohup "$@" </dev/null >>"$logfile" 2>&1
	) &
	pid=$!
	start=$(proc_starttime "$pid") || die "$1 exited immediately; see $logfile"
	printf '%s\n%s\n%s\n' "$pid" "$start" "$*" >"$pidfile.tmp"
	mv "$pidfile.tmp" "$pidfile"
	# Until the exec chain has finished the command line is still bash's; wait
	# for it so that the first status check does not see a mismatch.
	local deadline=$((SECONDS + 10))
	until is_running "$pidfile"; do
		if ! proc_starttime "$pid" >/dev/null || [ $SECONDS -ge $deadline ]; then
			tail -n 20 "$logfile" >&2 || true
			die "failed to start $*"
		fi
		sleep 0.05
	done
	log "started $(basename "$1") pid $pid (log: $logfile)"
}

# stop_daemon PIDFILE [TIMEOUT]: SIGTERM the recorded process if it is still
# ours, wait for it to exit, SIGKILL after TIMEOUT seconds. Removes PIDFILE.
stop_daemon() {
	local pidfile=$1 timeout=${2:-30} pid deadline
	if ! pid=$(pid_of "$pidfile"); then
		rm -f "$pidfile"
		return 0
	fi
	log "stopping $(basename "$pidfile" .pid) (pid $pid)"
	kill -TERM "$pid" 2>/dev/null || true
	deadline=$((SECONDS + timeout))
	while is_running "$pidfile"; do
		if [ $SECONDS -ge $deadline ]; then
			log "pid $pid still alive after ${timeout}s: SIGKILL"
			kill -KILL "$pid" 2>/dev/null || true
			sleep 0.5
			break
		fi
		sleep 0.2
	done
	rm -f "$pidfile"
}

# ---------------------------------------------------------------------------
# readiness

# https_code URL: print the HTTP status code of a TLS request verified with
# our CA ("000" when nothing answers or TLS fails).
https_code() {
	curl -sS -o /dev/null -w '%{http_code}' --max-time 5 --cacert "$CA_CRT" "$1" 2>/dev/null || true
}

# port_in_use PORT: something accepts TCP connections on 127.0.0.1:PORT.
port_in_use() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# wait_https URL TIMEOUT [PIDFILE...]: poll until URL answers over TLS with
# any HTTP status (the listener is up and the certificate verifies against our
# CA). Fails early if one of the given daemons died, with its log tail.
wait_https() {
	local url=$1 timeout=$2 deadline code pf
	shift 2
	deadline=$((SECONDS + timeout))
	while :; do
		code=$(https_code "$url")
		if [ -n "$code" ] && [ "$code" != 000 ]; then
			return 0
		fi
		for pf in "$@"; do
			if ! is_running "$pf"; then
				log "$(basename "$pf" .pid) is not running while waiting for $url"
				return 1
			fi
		done
		if [ $SECONDS -ge $deadline ]; then
			log "timed out after ${timeout}s waiting for $url"
			return 1
		fi
		sleep 0.5
	done
}

# s3_signed_ok ENDPOINT ACCESS SECRET: a SigV4-signed ListBuckets answers 200,
# i.e. the server speaks S3 and knows our credentials. curl's --aws-sigv4 is
# far quicker than starting the awscli Python interpreter. curl 7.88 does not
# send x-amz-content-sha256 by itself; RGW then answers SignatureDoesNotMatch
# (MinIO does not mind), so it is given explicitly: the SHA-256 of an empty
# body.
s3_signed_ok() {
	local code
	code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 10 --cacert "$CA_CRT" \
		--aws-sigv4 "aws:amz:us-east-1:s3" --user "$2:$3" \
		-H "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" \
		"$1/" 2>/dev/null) || true
	[ "$code" = 200 ]
}

# write_env FILE ENDPOINT ACCESS SECRET: the client environment for a server,
# as shell export lines, mode 0600 (it holds credentials).
write_env() {
	local file=$1
	(
		umask 077
		env_lines "$2" "$3" "$4" >"$file.tmp"
	)
	mv "$file.tmp" "$file"
}

env_lines() {
	cat <<EOF
export AWS_ENDPOINT_URL=$1
export AWS_ACCESS_KEY_ID=$2
export AWS_SECRET_ACCESS_KEY=$3
export AWS_DEFAULT_REGION=us-east-1
export AWS_REGION=us-east-1
export AWS_CA_BUNDLE=$CA_CRT
export AWS_EC2_METADATA_DISABLED=true
EOF
}
