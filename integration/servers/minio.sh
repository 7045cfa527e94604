#!/usr/bin/env bash
# minio.sh start|stop|status|env|reset: the MinIO test server.
#
#   https://127.0.0.1:19000 (S3 API), console disabled.
#   Data in $STATE/minio/data (kept across restarts), log in $STATE/minio/minio.log.
#   `start` is idempotent and writes the client environment to $STATE/minio/env
#   (mode 0600); `env` prints the same export lines.
#   `stop` stops only the process recorded in $STATE/minio/minio.pid;
#   `reset` stops it and deletes its data.
#
# Needs install.sh (binary) and tls.sh (certificates) first; up.sh runs all.
set -euo pipefail
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"

MINIO_PORT=${SSECFS_MINIO_PORT:-19000}
MINIO_CONSOLE_PORT=$((MINIO_PORT + 1))
MINIO_ENDPOINT=https://127.0.0.1:$MINIO_PORT
MINIO_USER=ssecfs-minio
MINIO_PASSWORD=ssecfs-minio-secret-123

DIR=$STATE/minio
PIDFILE=$DIR/minio.pid
LOGFILE=$DIR/minio.log
ENVFILE=$DIR/env
MINIO_BIN=$STATE/bin/minio

ready() {
	[ "$(https_code "$MINIO_ENDPOINT/minio/health/ready")" = 200 ] &&
		s3_signed_ok "$MINIO_ENDPOINT" "$MINIO_USER" "$MINIO_PASSWORD"
}

# certs_current: the certificate MinIO serves is the one tls.sh has now.
certs_current() {
	cmp -s "$TLS_DIR/server.crt" "$DIR/certs/public.crt" &&
		cmp -s "$TLS_DIR/server.key" "$DIR/certs/private.key"
}

start() {
	need_root
	[ -x "$MINIO_BIN" ] || die "$MINIO_BIN missing: run install.sh"
	[ -s "$TLS_DIR/server.crt" ] || die "$TLS_DIR/server.crt missing: run tls.sh"
	lock_or_wait "$DIR/.lock"
	if is_running "$PIDFILE" && certs_current && ready; then
		log "already running at $MINIO_ENDPOINT"
		write_env "$ENVFILE" "$MINIO_ENDPOINT" "$MINIO_USER" "$MINIO_PASSWORD"
		return 0
	fi
	# Running but not answering, or serving an outdated certificate: restart.
	stop_daemon "$PIDFILE"
	mkdir -p "$DIR/data" "$DIR/certs"
	chmod 0700 "$DIR/certs"
	install -m 0644 "$TLS_DIR/server.crt" "$DIR/certs/public.crt"
	install -m 0600 "$TLS_DIR/server.key" "$DIR/certs/private.key"
	# MinIO reads extra CAs from certs/CAs; ours lets it trust itself.
	mkdir -p "$DIR/certs/CAs"
	install -m 0644 "$CA_CRT" "$DIR/certs/CAs/ca.crt"
	# Our process is stopped now: a listener left on the port belongs to
	# someone else, and MinIO's own error for that is easy to miss in its log.
	if port_in_use "$MINIO_PORT"; then
		die "port $MINIO_PORT is already used by a process this script did not start"
	fi
	log "starting MinIO on $MINIO_ENDPOINT"
	# MINIO_BROWSER=off: no console; MINIO_UPDATE=off: no update checks
	# (no internet here); the console address is pinned anyway so that MinIO
	# does not pick a random port. Metrics without a token: the benchmark
	# counts each tool's requests from them (loopback only).
	MINIO_ROOT_USER=$MINIO_USER MINIO_ROOT_PASSWORD=$MINIO_PASSWORD \
		MINIO_BROWSER=off MINIO_UPDATE=off MINIO_CALLHOME_ENABLE=off \
		MINIO_PROMETHEUS_AUTH_TYPE=public \
		start_daemon "$PIDFILE" "$LOGFILE" "$MINIO_BIN" server --quiet --anonymous \
		--certs-dir "$DIR/certs" --address "127.0.0.1:$MINIO_PORT" \
		--console-address "127.0.0.1:$MINIO_CONSOLE_PORT" "$DIR/data"
	local deadline=$((SECONDS + 60))
	until ready; do
		if ! is_running "$PIDFILE"; then
			tail -n 30 "$LOGFILE" >&2 || true
			die "MinIO exited; see $LOGFILE"
		fi
		if [ $SECONDS -ge $deadline ]; then
			tail -n 30 "$LOGFILE" >&2 || true
			die "MinIO did not become ready within 60s; see $LOGFILE"
		fi
		sleep 0.3
	done
	write_env "$ENVFILE" "$MINIO_ENDPOINT" "$MINIO_USER" "$MINIO_PASSWORD"
	log "MinIO ready at $MINIO_ENDPOINT (env: $ENVFILE)"
}

stop() {
	lock_or_wait "$DIR/.lock"
	stop_daemon "$PIDFILE" 30
}

reset() {
	lock_or_wait "$DIR/.lock"
	stop_daemon "$PIDFILE" 30
	rm -rf "$DIR/data" "$ENVFILE"
	log "MinIO data deleted"
}

status() {
	local pid
	if pid=$(pid_of "$PIDFILE"); then
		if ready; then
			echo "minio: running (pid $pid), $MINIO_ENDPOINT answers"
			return 0
		fi
		echo "minio: running (pid $pid), $MINIO_ENDPOINT NOT answering"
		return 1
	fi
	echo "minio: stopped"
	return 3
}

case ${1:-} in
start) start ;;
stop) stop ;;
status) status ;;
reset) reset ;;
env) env_lines "$MINIO_ENDPOINT" "$MINIO_USER" "$MINIO_PASSWORD" ;;
*)
	echo "usage: $0 start|stop|status|env|reset" >&2
	exit 2
	;;
esac
