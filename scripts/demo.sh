#!/usr/bin/env bash
# demo.sh [stop]: mount a local SSE-C bucket and show it.
#
# Starts a one-node Ceph RGW on 127.0.0.1 over TLS and a Keystone with
# Barbican (installing them on a fresh Debian 12 machine), stores a new key
# in Barbican as the provider's guide does, uploads sample files with
# `aws s3 cp --sse-c` as users do today, and mounts the bucket at
# ./demo-mount with `ssecfs mount --barbican-secret`. Run as root.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SERVERS=$ROOT/integration/servers
STATE=${SSECFS_TEST_STATE:-/var/tmp/ssecfs-test}
DEMO=$STATE/demo
MNT=$ROOT/demo-mount
SSECFS=$ROOT/bin/ssecfs

if [ "${1:-}" = stop ]; then
	if grep -qs " $MNT " /proc/self/mountinfo; then
		"$SSECFS" umount "$MNT" && echo "unmounted $MNT"
	fi
	"$SERVERS/rgw.sh" stop
	"$SERVERS/openstack.sh" stop
	exit 0
fi

[ -x "$SSECFS" ] || { echo "build first: make build" >&2; exit 1; }
"$SERVERS/install.sh" packages
"$SERVERS/tls.sh"
"$SERVERS/rgw.sh" start
"$SERVERS/openstack.sh" start
# shellcheck disable=SC1091
. "$STATE/rgw/env"
# shellcheck disable=SC1091
. "$STATE/openstack/env"
aws() { /usr/bin/aws --endpoint-url "$AWS_ENDPOINT_URL" "$@"; }

# The key as the provider's guide makes it: `pwgen 32 1`, stored in
# Barbican. Only its href is kept; the other clients get the secret from
# `openstack secret get`, ssecfs fetches it itself.
mkdir -p "$DEMO" && chmod 700 "$DEMO"
if [ -s "$DEMO/secret-href" ] && ! /usr/bin/openstack secret get "$(cat "$DEMO/secret-href")" >/dev/null 2>&1; then
	rm "$DEMO/secret-href" # Barbican was reset: make a new key (and bucket)
fi
if [ ! -s "$DEMO/secret-href" ]; then
	secret_raw=$(pwgen 32 1)
	/usr/bin/openstack secret store --name objectSecret --algorithm aes --bit-length 256 \
		--payload "$secret_raw" -f value -c "Secret href" > "$DEMO/secret-href"
	unset secret_raw
fi
href=$(cat "$DEMO/secret-href")
secret=$(/usr/bin/openstack secret get "$href" -p -c Payload -f value)
# One bucket per key: objects under an older demo key would (rightly) make
# the mount refuse this one.
BUCKET=demo-$(basename "$href" | cut -c1-8)

if ! aws s3api head-bucket --bucket "$BUCKET" 2>/dev/null; then
	aws s3 mb "s3://$BUCKET" >/dev/null
fi
mkdir -p "$DEMO/files/docs" "$DEMO/files/photos/2026"
cp /usr/share/common-licenses/GPL-3 "$DEMO/files/docs/GPL-3.txt"
cp /etc/os-release "$DEMO/files/docs/os-release"
head -c $((64 << 20)) /dev/urandom > "$DEMO/files/photos/2026/big-video.bin"
echo "Uploading sample files with aws s3 sync --only-show-errors --sse-c AES256 ..."
aws s3 sync --only-show-errors --sse-c AES256 --sse-c-key "$secret" "$DEMO/files" "s3://$BUCKET/"

mkdir -p "$MNT"
if ! grep -qs " $MNT " /proc/self/mountinfo; then
	"$SSECFS" mount --barbican-secret "$href" --log-file "$DEMO/ssecfs.log" "$BUCKET" "$MNT"
fi
unset secret
echo
echo "Mounted s3://$BUCKET at $MNT with the key from Barbican secret $href:"
ls -lR "$MNT"
echo
echo "Same bytes as uploaded:"
sha256sum "$DEMO/files/photos/2026/big-video.bin" "$MNT/photos/2026/big-video.bin"
cat <<EOM

Look around:  ls -l $MNT/docs; less $MNT/docs/GPL-3.txt
Write:        cp -r /usr/share/doc/bash $MNT/docs/; bin/ssecfs status $MNT
Without the key the server refuses the object:
              (. $STATE/rgw/env; /usr/bin/aws --endpoint-url \$AWS_ENDPOINT_URL s3api head-object --bucket $BUCKET --key docs/os-release)
Log:          $DEMO/ssecfs.log
Stop:         make demo-stop   (or: bin/ssecfs umount $MNT)
EOM
