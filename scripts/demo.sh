#!/usr/bin/env bash
# demo.sh [stop]: mount a local SSE-C bucket and show it.
#
# Starts a one-node Ceph RGW on 127.0.0.1 over TLS (installing it on a fresh
# Debian 12 machine), makes a key, uploads sample files with
# `aws s3 cp --sse-c` as users do today, and mounts the bucket at
# ./demo-mount with ssecfs. Run as root (the server needs it).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SERVERS=$ROOT/integration/servers
STATE=${SSECFS_TEST_STATE:-/var/tmp/ssecfs-test}
DEMO=$STATE/demo
MNT=$ROOT/demo-mount
SSECFS=$ROOT/bin/ssecfs
BUCKET=demo

if [ "${1:-}" = stop ]; then
	if grep -qs " $MNT " /proc/self/mountinfo; then
		"$SSECFS" umount "$MNT" && echo "unmounted $MNT"
	fi
	"$SERVERS/rgw.sh" stop
	exit 0
fi

[ -x "$SSECFS" ] || { echo "build first: make build" >&2; exit 1; }
"$SERVERS/install.sh" packages
"$SERVERS/tls.sh"
"$SERVERS/rgw.sh" start
# shellcheck disable=SC1091
. "$STATE/rgw/env"
aws() { /usr/bin/aws --endpoint-url "$AWS_ENDPOINT_URL" "$@"; }

# The key as the provider's guide makes it: 32 printable characters. It
# goes to a file only ssecfs and aws read; ssecfs never takes it in argv.
mkdir -p "$DEMO" && chmod 700 "$DEMO"
if [ ! -s "$DEMO/key" ]; then
	(umask 077; head -c 24 /dev/urandom | base64 | tr -d '\n' > "$DEMO/key")
fi
secret=$(cat "$DEMO/key")

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
	"$SSECFS" mount --key-file "$DEMO/key" --log-file "$DEMO/ssecfs.log" "$BUCKET" "$MNT"
fi
echo
echo "Mounted s3://$BUCKET at $MNT:"
ls -lR "$MNT"
echo
echo "Same bytes as uploaded:"
sha256sum "$DEMO/files/photos/2026/big-video.bin" "$MNT/photos/2026/big-video.bin"
cat <<EOM

Look around:  ls -l $MNT/docs; less $MNT/docs/GPL-3.txt
Without the key the server refuses the object:
              (. $STATE/rgw/env; /usr/bin/aws --endpoint-url \$AWS_ENDPOINT_URL s3api head-object --bucket $BUCKET --key docs/os-release)
Log:          $DEMO/ssecfs.log
Stop:         make demo-stop   (or: bin/ssecfs umount $MNT)
EOM
