#!/usr/bin/env bash
# openstack-selftest.sh: smoke-test the running Keystone and Barbican
# (openstack.sh start) with Debian's openstack CLI, the way users store an
# SSE-C key: a `pwgen 32 1` payload stored as an AES-256 secret, read back
# with the password, the application credential and clouds.yaml; the user of
# another project gets 403. Deletes its secret at the end. Exit status 0 when
# every check passed (~10 s: each CLI run starts a Python interpreter).
set -euo pipefail
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"

# Debian's client: another `openstack` may come first on PATH.
OPENSTACK=/usr/bin/openstack
DIR=$STATE/openstack

passed=0
failed=0
check() {
	local what=$1
	shift
	if "$@"; then
		passed=$((passed + 1))
		log "ok: $what"
	else
		failed=$((failed + 1))
		log "FAILED: $what"
	fi
}

# as ENVFILE ARGS...: the openstack CLI with only the environment of ENVFILE
# (no OS_* variables of the caller).
as() {
	local envfile=$1
	shift
	# shellcheck disable=SC2016 # expanded by the inner shell
	env -i PATH=/usr/bin:/bin HOME="$tmp" LANG=C.UTF-8 \
		bash -c '. "$1"; shift; exec "$@"' - "$envfile" "$OPENSTACK" "$@"
}

# cloud NAME ARGS...: the openstack CLI with OS_CLOUD=NAME from our clouds.yaml.
cloud() {
	local name=$1
	shift
	env -i PATH=/usr/bin:/bin HOME="$tmp" LANG=C.UTF-8 \
		OS_CLIENT_CONFIG_FILE="$DIR/clouds.yaml" OS_CLOUD="$name" "$OPENSTACK" "$@"
}

same() { [ "$1" = "$2" ]; }
contains() { [[ $1 == *"$2"* ]]; }
lacks() { [[ $1 != *"$2"* ]]; }

for f in env appcred.env other.env clouds.yaml; do
	[ -s "$DIR/$f" ] || die "$DIR/$f missing: run openstack.sh start first"
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

key=$(pwgen 32 1)
href=$(as "$DIR/env" secret store --name "ssecfs-selftest-$(date +%s)" --algorithm aes \
	--bit-length 256 --payload "$key" -c 'Secret href' -f value) || href=
check "store a secret (href $href)" contains "$href" "/v1/secrets/"

got=$(as "$DIR/env" secret get "$href" -p -c Payload -f value 2>&1) || true
check "read it back with the password" same "$got" "$key"
got=$(as "$DIR/appcred.env" secret get "$href" -p -c Payload -f value 2>&1) || true
check "read it with the application credential" same "$got" "$key"
got=$(cloud ssecfs-appcred secret get "$href" -p -c Payload -f value 2>&1) || true
check "read it with clouds.yaml (ssecfs-appcred)" same "$got" "$key"
got=$(as "$DIR/other.env" secret get "$href" -p -c Payload -f value 2>&1) || true
check "another project's user gets 403 Forbidden" contains "$got" "Forbidden"
check "... and not the payload" lacks "$got" "$key"

as "$DIR/env" secret delete "$href" >/dev/null 2>&1 || true

if [ "$failed" -eq 0 ]; then
	echo "openstack-selftest: all $passed checks ok"
else
	echo "openstack-selftest: $failed of $((passed + failed)) checks FAILED"
	exit 1
fi
