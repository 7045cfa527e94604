#!/usr/bin/env bash
# openstack.sh start|stop|status|env|reset: Keystone and Barbican (Debian 12:
# Keystone 22 "zed", Barbican 15) for the tests that fetch the SSE-C key from
# a key manager.
#
#   Keystone  http://127.0.0.1:15000/v3   (identity, region RegionOne)
#   Barbican  http://127.0.0.1:19311      (key-manager, in the catalog)
#   Plain HTTP: both listen on the loopback interface only (waitress has no
#   TLS). Both are WSGI apps served by waitress (openstack-serve.py) from
#   Debian's /usr/bin/python3; SQLite databases in WAL mode.
#
#   Everything (configuration, databases, Fernet keys, Barbican's KEK, logs,
#   pid files, client environments) lives in $STATE/openstack (mode 0700):
#   nothing goes to /etc/keystone, /etc/barbican or /var/lib.
#
#   start  idempotent. Creates the databases and keys once, runs the
#          bootstrap (admin, service user, catalog, test projects, users,
#          roles, application credential) when it is new or changed, and
#          writes the client environments (mode 0600):
#            env          ssecfs-user in project ssecfs (roles creator, member, reader)
#            appcred.env  application credential of ssecfs-user
#            other.env    other-user in project other (same roles there)
#            admin.env    the Keystone admin
#            clouds.yaml  clouds ssecfs, ssecfs-appcred, other, admin
#   stop   both servers (only the PIDs in our pid files; data kept).
#   reset  stop and delete all data; the next start creates everything anew
#          (a new application credential id, secrets gone).
#   env    print the environment of ssecfs-user (same as $STATE/openstack/env).
#
# Needs `install.sh openstack` (or `install.sh packages`) first; up.sh runs all.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=common.sh
source "$HERE/common.sh"

KEYSTONE_PORT=${SSECFS_KEYSTONE_PORT:-15000}
BARBICAN_PORT=${SSECFS_BARBICAN_PORT:-19311}
KEYSTONE_URL=http://127.0.0.1:$KEYSTONE_PORT/v3
BARBICAN_URL=http://127.0.0.1:$BARBICAN_PORT
REGION=RegionOne

# Fixed test credentials (like the S3 servers' ones).
ADMIN_USER="admin"
ADMIN_PROJECT="admin"
ADMIN_PASSWORD=ssecfs-keystone-admin-123
BARBICAN_USER=barbican
BARBICAN_PASSWORD=ssecfs-barbican-service-123
SSECFS_USER=ssecfs-user
SSECFS_PROJECT=ssecfs
SSECFS_PASSWORD=ssecfs-user-password-123
OTHER_USER=other-user
OTHER_PROJECT=other
OTHER_PASSWORD=other-user-password-123
APPCRED_NAME=ssecfs-appcred
APPCRED_SECRET=ssecfs-appcred-secret-0123456789abcdef

# Debian's interpreter: the python3 first on PATH may be another one that
# does not see the Debian packages' modules.
PY=/usr/bin/python3
# Do not let the caller's Python or OpenStack settings leak into our tools
# and servers (a sourced appcred.env would change how the bootstrap logs in).
unset PYTHONPATH PYTHONHOME PYTHONSTARTUP
export PYTHONNOUSERSITE=1
for v in $(compgen -v OS_ || true); do unset "$v"; done
# Loopback requests must never go through a proxy.
export no_proxy=127.0.0.1,localhost NO_PROXY=127.0.0.1,localhost

DIR=$STATE/openstack
LOGDIR=$DIR/log
KS_CONF=$DIR/keystone.conf
BB_CONF=$DIR/barbican.conf
BB_PASTE=$DIR/barbican-api-paste.ini
KS_DB=$DIR/keystone.db
BB_DB=$DIR/barbican.db
KS_PID=$DIR/keystone.pid
BB_PID=$DIR/barbican.pid
KEK_FILE=$DIR/barbican-kek
BOOTSTRAPPED=$DIR/.bootstrapped
APPCRED_ID_FILE=$DIR/appcred.id
ENVFILE=$DIR/env
# check_same_thread=false: waitress hands a request to any of its threads;
# timeout: wait for a writer instead of failing with "database is locked".
KS_DB_URL="sqlite:///$KS_DB?check_same_thread=false&timeout=30"
BB_DB_URL="sqlite:///$BB_DB?check_same_thread=false&timeout=30"
# Barbican fails concurrent writes on SQLite: one request at a time. Keystone
# mostly reads (Fernet tokens are not stored).
KS_THREADS=4
BB_THREADS=1

# ---------------------------------------------------------------------------
# configuration

# install_if_changed FILE: move FILE.tmp to FILE (mode 0600); return 0 when
# the content changed, 1 when it was the same.
install_if_changed() {
	chmod 0600 "$1.tmp"
	if cmp -s "$1.tmp" "$1"; then
		rm -f "$1.tmp"
		return 1
	fi
	mv "$1.tmp" "$1"
	return 0
}

# fernet_key: a Fernet key as Keystone's `keystone-manage fernet_setup`
# writes it (URL-safe base64 of 32 random bytes). Generated here: each
# keystone-manage run costs a second or two of Python start-up.
fernet_key() {
	head -c 32 /dev/urandom | base64 | tr '+/' '-_'
}

# key_repo DIR: a Keystone key repository with a staged (0) and a primary
# (1) key, created once.
key_repo() {
	[ -s "$1/1" ] && return 0
	rm -rf "$1.tmp"
	mkdir -m 0700 "$1.tmp"
	(
		umask 077
		fernet_key >"$1.tmp/0"
		fernet_key >"$1.tmp/1"
	)
	rm -rf "$1"
	mv "$1.tmp" "$1"
}

# write_conf: regenerate the configuration files; return 0 when one changed
# (running servers must then be restarted).
write_conf() {
	local changed=1
	key_repo "$DIR/fernet-keys"
	key_repo "$DIR/fernet-receipts"
	key_repo "$DIR/credential-keys"
	# Barbican's key-encryption key wraps every stored secret: created once,
	# kept across restarts (a new KEK makes the stored secrets unreadable).
	if [ ! -s "$KEK_FILE" ]; then
		(
			umask 077
			head -c 32 /dev/urandom | base64 >"$KEK_FILE.tmp"
		)
		mv "$KEK_FILE.tmp" "$KEK_FILE"
	fi

	cat >"$KS_CONF.tmp" <<EOF
# Generated by integration/servers/openstack.sh; edits are overwritten.
[DEFAULT]
debug = false
# A file handler: oslo.log colours what goes to stderr.
use_stderr = false
log_file = $LOGDIR/keystone.log

[database]
connection = $KS_DB_URL

[token]
provider = fernet

[fernet_tokens]
key_repository = $DIR/fernet-keys

[fernet_receipts]
key_repository = $DIR/fernet-receipts

[credential]
key_repository = $DIR/credential-keys

[identity]
# The bcrypt minimum: every password login costs little CPU on a test machine.
password_hash_rounds = 4

[cache]
# In-process cache: without it every token validation (one per new token
# that reaches Barbican) takes ~0.8 s of Keystone's CPU here.
enabled = true
backend = dogpile.cache.memory
EOF
	install_if_changed "$KS_CONF" && changed=0

	cat >"$BB_CONF.tmp" <<EOF
# Generated by integration/servers/openstack.sh; edits are overwritten.
[DEFAULT]
debug = false
use_stderr = false
log_file = $LOGDIR/barbican.log
# The base of the secret hrefs that Barbican returns.
host_href = $BARBICAN_URL
sql_connection = $BB_DB_URL
# The schema is created by 'barbican_manage db upgrade' before the start.
db_auto_create = false

[secretstore]
enabled_secretstore_plugins = store_crypto

[crypto]
enabled_crypto_plugins = simple_crypto

[simple_crypto_plugin]
kek = $(cat "$KEK_FILE")

[queue]
enable = false

[oslo_policy]
# Barbican 15's legacy defaults: roles creator (store), observer (read), admin.
enforce_new_defaults = false
enforce_scope = false

[keystone_authtoken]
www_authenticate_uri = $KEYSTONE_URL
auth_url = $KEYSTONE_URL
auth_type = password
username = $BARBICAN_USER
password = $BARBICAN_PASSWORD
user_domain_name = Default
project_name = service
project_domain_name = Default
region_name = $REGION
interface = public
service_token_roles_required = true
EOF
	install_if_changed "$BB_CONF" && changed=0

	# Barbican's paste pipeline, from its etc/barbican-api-paste.ini, with
	# Keystone authentication on /v1 (the versions document at / needs none).
	cat >"$BB_PASTE.tmp" <<'EOF'
# Generated by integration/servers/openstack.sh; edits are overwritten.
[composite:main]
use = egg:Paste#urlmap
/: barbican_version
/v1: barbican_api_keystone

[pipeline:barbican_version]
pipeline = versionapp

[pipeline:barbican_api_keystone]
pipeline = keystone_authtoken context apiapp

[app:apiapp]
paste.app_factory = barbican.api.app:create_main_app

[app:versionapp]
paste.app_factory = barbican.api.app:create_version_app

[filter:context]
paste.filter_factory = barbican.api.middleware.context:ContextMiddleware.factory

[filter:keystone_authtoken]
paste.filter_factory = keystonemiddleware.auth_token:filter_factory
EOF
	install_if_changed "$BB_PASTE" && changed=0
	return $changed
}

# ---------------------------------------------------------------------------
# databases

# sqlite_wal DB: switch DB to write-ahead logging (persistent in the file).
# Needs exclusive access: only while no server uses DB.
sqlite_wal() {
	"$PY" - "$1" <<'EOF'
import sqlite3, sys
con = sqlite3.connect(sys.argv[1], timeout=30)
mode = con.execute("PRAGMA journal_mode=WAL").fetchone()[0]
con.close()
if mode.lower() != "wal":
    sys.exit("journal_mode is %s, not wal" % mode)
EOF
}

# keystone_manage ARGS...: its log goes to a file of its own (the
# configuration's log_file is the server's).
keystone_manage() {
	/usr/bin/keystone-manage --config-file "$KS_CONF" --log-file "$LOGDIR/keystone-manage.log" "$@"
}

keystone_db() {
	# db_sync is idempotent but takes seconds: only when the schema is new
	# (a marker written after a successful sync) or Keystone was updated.
	local stamp
	stamp=$(dpkg-query -W -f='${Version}' python3-keystone 2>/dev/null || echo unknown)
	if [ "$(cat "$DIR/.keystone-db" 2>/dev/null)" != "$stamp" ] || [ ! -s "$KS_DB" ]; then
		log "keystone-manage db_sync"
		keystone_manage db_sync >>"$LOGDIR/keystone-manage.log" 2>&1 ||
			die "keystone-manage db_sync failed; see $LOGDIR/keystone-manage.log"
		echo "$stamp" >"$DIR/.keystone-db"
	fi
	sqlite_wal "$KS_DB" || die "cannot switch $KS_DB to WAL"
}

barbican_db() {
	local stamp
	stamp=$(dpkg-query -W -f='${Version}' python3-barbican 2>/dev/null || echo unknown)
	if [ "$(cat "$DIR/.barbican-db" 2>/dev/null)" != "$stamp" ] || [ ! -s "$BB_DB" ]; then
		log "barbican-manage db upgrade"
		# barbican-manage is in the barbican-common package (which brings
		# dbconfig-common and /etc/barbican); the module is in python3-barbican.
		# It ignores --config-file for the database: the URL is passed.
		"$PY" -c 'import sys; from barbican.cmd.barbican_manage import main; sys.exit(main())' \
			db upgrade --db-url "$BB_DB_URL" >>"$LOGDIR/barbican-manage.log" 2>&1 ||
			die "barbican-manage db upgrade failed; see $LOGDIR/barbican-manage.log"
		echo "$stamp" >"$DIR/.barbican-db"
	fi
	sqlite_wal "$BB_DB" || die "cannot switch $BB_DB to WAL"
}

# ---------------------------------------------------------------------------
# readiness

http_code() {
	curl -sS -o /dev/null -w '%{http_code}' --max-time 10 "$@" 2>/dev/null || true
}

keystone_up() {
	[ "$(http_code "$KEYSTONE_URL")" = 200 ]
}

# token USER PASSWORD PROJECT: a project-scoped token from Keystone.
token() {
	local body
	body=$(printf '{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"%s","domain":{"id":"default"},"password":"%s"}}},"scope":{"project":{"name":"%s","domain":{"id":"default"}}}}}' "$1" "$2" "$3")
	curl -sS -o /dev/null -D - --max-time 10 -H 'Content-Type: application/json' \
		-d "$body" "$KEYSTONE_URL/auth/tokens" 2>/dev/null |
		tr -d '\r' | sed -n 's/^[Xx]-[Ss]ubject-[Tt]oken: //p'
}

# ready: Keystone issues a token to ssecfs-user and Barbican accepts it (the
# whole chain: Keystone, Barbican's service user, token validation, database).
ready() {
	local tok
	tok=$(token "$SSECFS_USER" "$SSECFS_PASSWORD" "$SSECFS_PROJECT")
	[ -n "$tok" ] || return 1
	[ "$(http_code -H "X-Auth-Token: $tok" "$BARBICAN_URL/v1/secrets?limit=1")" = 200 ]
}

# wait_for TIMEOUT WHAT CHECK PIDFILE...: poll CHECK until it succeeds.
wait_for() {
	local deadline=$((SECONDS + $1)) what=$2 check=$3 pf
	shift 3
	until "$check"; do
		for pf in "$@"; do
			if ! is_running "$pf"; then
				tail -n 30 "$LOGDIR/$(basename "$pf" .pid).log" >&2 || true
				die "$(basename "$pf" .pid) exited while waiting for $what; see $LOGDIR"
			fi
		done
		[ $SECONDS -lt "$deadline" ] || die "$what not ready after $1 s; see $LOGDIR"
		sleep 0.3
	done
}

barbican_listening() {
	[ "$(http_code "$BARBICAN_URL/")" != 000 ]
}

# ---------------------------------------------------------------------------
# servers

start_keystone() {
	if port_in_use "$KEYSTONE_PORT"; then
		die "port $KEYSTONE_PORT is already used by a process this script did not start"
	fi
	start_daemon "$KS_PID" "$LOGDIR/keystone.log" \
		"$PY" "$HERE/openstack-serve.py" keystone "$KS_CONF" "$KEYSTONE_PORT" "$KS_THREADS"
}

start_barbican() {
	if port_in_use "$BARBICAN_PORT"; then
		die "port $BARBICAN_PORT is already used by a process this script did not start"
	fi
	start_daemon "$BB_PID" "$LOGDIR/barbican.log" \
		"$PY" "$HERE/openstack-serve.py" barbican "$BB_CONF" "$BB_PASTE" "$BARBICAN_PORT" "$BB_THREADS"
}

# bootstrap_stamp: what the bootstrap depends on; a change reruns it.
bootstrap_stamp() {
	{
		cat "$HERE/openstack-bootstrap.py"
		printf '%s\n' "$KEYSTONE_URL" "$BARBICAN_URL" "$REGION" "$ADMIN_USER" "$ADMIN_PASSWORD" \
			"$BARBICAN_USER" "$BARBICAN_PASSWORD" "$SSECFS_USER" "$SSECFS_PROJECT" \
			"$SSECFS_PASSWORD" "$OTHER_USER" "$OTHER_PROJECT" "$OTHER_PASSWORD" \
			"$APPCRED_NAME" "$APPCRED_SECRET"
	} | sha256sum | cut -d' ' -f1
}

# bootstrapped: the bootstrap ran to its end with the current parameters.
bootstrapped() {
	[ -s "$APPCRED_ID_FILE" ] && [ "$(cat "$BOOTSTRAPPED" 2>/dev/null)" = "$(bootstrap_stamp)" ]
}

# keystone_manage_bootstrap: admin user, project and role (plus member and
# reader), the identity service and its endpoints. Idempotent. Writes to the
# database directly, so it runs while Keystone is stopped: a running Keystone
# would not see the changes through its in-process cache. The password goes
# through the environment, not the command line.
keystone_manage_bootstrap() {
	rm -f "$BOOTSTRAPPED"
	log "keystone-manage bootstrap"
	OS_BOOTSTRAP_PASSWORD=$ADMIN_PASSWORD keystone_manage bootstrap \
		--bootstrap-username "$ADMIN_USER" --bootstrap-project-name "$ADMIN_PROJECT" \
		--bootstrap-role-name admin --bootstrap-service-name keystone \
		--bootstrap-region-id "$REGION" \
		--bootstrap-admin-url "$KEYSTONE_URL" --bootstrap-internal-url "$KEYSTONE_URL" \
		--bootstrap-public-url "$KEYSTONE_URL" >>"$LOGDIR/keystone-manage.log" 2>&1 ||
		die "keystone-manage bootstrap failed; see $LOGDIR/keystone-manage.log"
}

# bootstrap: the rest, through Keystone's API (openstack-bootstrap.py).
bootstrap() {
	local id
	log "creating projects, users, roles, catalog entries"
	id=$(BOOT_AUTH_URL=$KEYSTONE_URL BOOT_REGION=$REGION \
		BOOT_ADMIN_USER=$ADMIN_USER BOOT_ADMIN_PASSWORD=$ADMIN_PASSWORD BOOT_ADMIN_PROJECT=$ADMIN_PROJECT \
		BOOT_BARBICAN_USER=$BARBICAN_USER BOOT_BARBICAN_PASSWORD=$BARBICAN_PASSWORD \
		BOOT_BARBICAN_URL=$BARBICAN_URL \
		BOOT_USER=$SSECFS_USER BOOT_USER_PASSWORD=$SSECFS_PASSWORD BOOT_PROJECT=$SSECFS_PROJECT \
		BOOT_OTHER_USER=$OTHER_USER BOOT_OTHER_PASSWORD=$OTHER_PASSWORD BOOT_OTHER_PROJECT=$OTHER_PROJECT \
		BOOT_APPCRED_NAME=$APPCRED_NAME BOOT_APPCRED_SECRET=$APPCRED_SECRET \
		"$PY" "$HERE/openstack-bootstrap.py" 2>>"$LOGDIR/bootstrap.log") ||
		{ tail -n 20 "$LOGDIR/bootstrap.log" >&2; die "bootstrap failed; see $LOGDIR/bootstrap.log"; }
	[[ $id =~ ^[0-9a-f]{32}$ ]] || die "bootstrap printed no application credential id: '$id'"
	echo "$id" >"$APPCRED_ID_FILE"
	bootstrap_stamp >"$BOOTSTRAPPED"
}

# ---------------------------------------------------------------------------
# client environments

# Each file first unsets the variables of the other authentication method so
# that sourcing one after another in the same shell does not mix them.
password_env() {
	cat <<EOF
unset OS_CLOUD OS_AUTH_TYPE OS_APPLICATION_CREDENTIAL_ID OS_APPLICATION_CREDENTIAL_SECRET OS_APPLICATION_CREDENTIAL_NAME OS_TOKEN OS_PROJECT_ID
export OS_AUTH_URL=$KEYSTONE_URL
export OS_USERNAME=$1
export OS_PASSWORD=$2
export OS_PROJECT_NAME=$3
export OS_USER_DOMAIN_NAME=Default
export OS_PROJECT_DOMAIN_NAME=Default
export OS_REGION_NAME=$REGION
export OS_IDENTITY_API_VERSION=3
export OS_INTERFACE=public
EOF
}

appcred_env() {
	cat <<EOF
unset OS_CLOUD OS_USERNAME OS_PASSWORD OS_PROJECT_NAME OS_PROJECT_ID OS_USER_DOMAIN_NAME OS_PROJECT_DOMAIN_NAME OS_TOKEN OS_APPLICATION_CREDENTIAL_NAME
export OS_AUTH_TYPE=v3applicationcredential
export OS_AUTH_URL=$KEYSTONE_URL
export OS_APPLICATION_CREDENTIAL_ID=$1
export OS_APPLICATION_CREDENTIAL_SECRET=$APPCRED_SECRET
export OS_REGION_NAME=$REGION
export OS_IDENTITY_API_VERSION=3
export OS_INTERFACE=public
EOF
}

cloud_yaml() {
	cat <<EOF
  $1:
    auth:
      auth_url: $KEYSTONE_URL
      username: $2
      password: $3
      project_name: $4
      user_domain_name: Default
      project_domain_name: Default
    region_name: $REGION
    interface: public
    identity_api_version: 3
EOF
}

clouds_yaml() {
	echo "# Generated by integration/servers/openstack.sh (OS_CLOUD=ssecfs etc.)."
	echo "clouds:"
	cloud_yaml ssecfs "$SSECFS_USER" "$SSECFS_PASSWORD" "$SSECFS_PROJECT"
	cat <<EOF
  ssecfs-appcred:
    auth_type: v3applicationcredential
    auth:
      auth_url: $KEYSTONE_URL
      application_credential_id: $1
      application_credential_secret: $APPCRED_SECRET
    region_name: $REGION
    interface: public
    identity_api_version: 3
EOF
	cloud_yaml other "$OTHER_USER" "$OTHER_PASSWORD" "$OTHER_PROJECT"
	cloud_yaml admin "$ADMIN_USER" "$ADMIN_PASSWORD" "$ADMIN_PROJECT"
}

# put FILE: stdin to FILE, mode 0600, atomically.
put() {
	(
		umask 077
		cat >"$1.tmp"
	)
	mv "$1.tmp" "$1"
}

write_envs() {
	local id
	id=$(cat "$APPCRED_ID_FILE")
	password_env "$SSECFS_USER" "$SSECFS_PASSWORD" "$SSECFS_PROJECT" | put "$ENVFILE"
	password_env "$OTHER_USER" "$OTHER_PASSWORD" "$OTHER_PROJECT" | put "$DIR/other.env"
	password_env "$ADMIN_USER" "$ADMIN_PASSWORD" "$ADMIN_PROJECT" | put "$DIR/admin.env"
	appcred_env "$id" | put "$DIR/appcred.env"
	clouds_yaml "$id" | put "$DIR/clouds.yaml"
}

# ---------------------------------------------------------------------------
# commands

start() {
	need_root
	# dpkg, not an import: importing Keystone and Barbican takes seconds.
	local p
	for p in python3-keystone python3-barbican python3-keystonemiddleware python3-waitress; do
		[ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" = installed ] ||
			die "$p is not installed: run install.sh openstack"
	done
	mkdir -p "$DIR"
	chmod 0700 "$DIR"
	mkdir -p "$LOGDIR"
	lock_or_wait "$DIR/.lock"
	local changed=no boot=no
	write_conf && changed=yes
	bootstrapped || boot=yes
	if [ $changed = no ] && [ $boot = no ] &&
		is_running "$KS_PID" && is_running "$BB_PID" && ready; then
		log "already running: Keystone $KEYSTONE_URL, Barbican $BARBICAN_URL"
		write_envs
		return 0
	fi
	# Restart what runs with an old configuration or does not answer.
	if [ $changed = yes ] || [ $boot = yes ] || ! keystone_up; then
		stop_daemon "$KS_PID" 30
	fi
	if [ $changed = yes ] || ! barbican_listening; then
		stop_daemon "$BB_PID" 30
	fi

	# Barbican's schema and start overlap with Keystone's: the two are
	# independent until the first authenticated request (Barbican's token
	# validation reaches Keystone lazily).
	local bb_job=
	if ! is_running "$BB_PID"; then
		{
			barbican_db
			log "starting Barbican on $BARBICAN_URL"
			start_barbican
		} &
		bb_job=$!
	fi
	if ! is_running "$KS_PID"; then
		keystone_db
		[ $boot = no ] || keystone_manage_bootstrap
		log "starting Keystone on $KEYSTONE_URL"
		start_keystone
	fi
	wait_for 90 Keystone keystone_up "$KS_PID"
	[ $boot = no ] || bootstrap
	if [ -n "$bb_job" ]; then
		wait "$bb_job" || die "Barbican failed to start; see $LOGDIR"
	fi
	wait_for 90 "Barbican" barbican_listening "$BB_PID"
	wait_for 60 "Barbican with Keystone tokens" ready "$KS_PID" "$BB_PID"
	write_envs
	log "ready: Keystone $KEYSTONE_URL, Barbican $BARBICAN_URL (env: $ENVFILE)"
}

stop() {
	mkdir -p "$DIR"
	lock_or_wait "$DIR/.lock"
	stop_daemon "$BB_PID" 30
	stop_daemon "$KS_PID" 30
}

reset() {
	mkdir -p "$DIR"
	lock_or_wait "$DIR/.lock"
	stop_daemon "$BB_PID" 30
	stop_daemon "$KS_PID" 30
	# Everything but the lock file we hold and the logs.
	find "$DIR" -mindepth 1 -maxdepth 1 ! -name .lock ! -name log -exec rm -rf {} +
	log "Keystone and Barbican data deleted"
}

status() {
	local rc=0 name pf pid
	for name in keystone barbican; do
		pf=$DIR/$name.pid
		if pid=$(pid_of "$pf"); then
			echo "openstack: $name running (pid $pid)"
		else
			echo "openstack: $name stopped"
			rc=3
		fi
	done
	if ready; then
		echo "openstack: $KEYSTONE_URL and $BARBICAN_URL answer"
	else
		echo "openstack: $KEYSTONE_URL / $BARBICAN_URL NOT answering"
		[ $rc -ne 0 ] || rc=1
	fi
	return $rc
}

case ${1:-} in
start) start ;;
stop) stop ;;
status) status ;;
reset) reset ;;
env) password_env "$SSECFS_USER" "$SSECFS_PASSWORD" "$SSECFS_PROJECT" ;;
*)
	echo "usage: $0 start|stop|status|env|reset" >&2
	exit 2
	;;
esac
