#!/usr/bin/env bash
# selftest.sh [minio|rgw|all]: smoke-test running test servers with the
# reference clients from Debian: SSE-C upload and download with awscli, HEAD
# without the key refused (400), listing and keyed read with rclone. Creates
# and deletes its own bucket. Exit status 0 when every check passed.
set -euo pipefail
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"

# Debian's awscli 2.9. An `aws` earlier on PATH (a pyenv shim of awscli 1.x)
# gets HTTP 411 from RGW. awscli 2.9 also IGNORES AWS_ENDPOINT_URL (support
# came in 2.13) and would talk to AWS itself: always pass --endpoint-url.
AWS=/usr/bin/aws
RCLONE=/usr/bin/rclone
# The SSE-C key as users have it: 32 printable characters used as the bytes.
KEY=0123456789abcdef0123456789abcdef

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

aws() { "$AWS" --endpoint-url "$AWS_ENDPOINT_URL" "$@"; }

# rclone_x ARGS...: rclone with an on-the-fly remote "X:" for the current
# server. rclone 1.60's S3 backend fails to use the CA when AWS_CA_BUNDLE is
# set: unset it and give the CA through SSL_CERT_FILE.
rclone_x() {
	env -u AWS_CA_BUNDLE SSL_CERT_FILE="$CA_CRT" \
		RCLONE_CONFIG_X_TYPE=s3 RCLONE_CONFIG_X_PROVIDER="$PROVIDER" \
		RCLONE_CONFIG_X_ENDPOINT="$AWS_ENDPOINT_URL" \
		RCLONE_CONFIG_X_ACCESS_KEY_ID="$AWS_ACCESS_KEY_ID" \
		RCLONE_CONFIG_X_SECRET_ACCESS_KEY="$AWS_SECRET_ACCESS_KEY" \
		RCLONE_CONFIG_X_REGION="$AWS_DEFAULT_REGION" \
		"$RCLONE" "$@"
}

# selftest NAME ENVFILE RCLONE_PROVIDER
selftest() {
	local name=$1 envfile=$2 tmp bucket
	PROVIDER=$3
	[ -s "$envfile" ] || die "$envfile missing: start the server first"
	# shellcheck source=/dev/null
	. "$envfile"
	tmp=$(mktemp -d)
	bucket=ssecfs-selftest-$(date +%s)-$RANDOM
	head -c 100000 /dev/urandom >"$tmp/in"

	check "$name: create bucket" aws s3api create-bucket --bucket "$bucket" --output text >/dev/null
	check "$name: SSE-C upload" aws s3 cp --only-show-errors --sse-c AES256 --sse-c-key "$KEY" \
		"$tmp/in" "s3://$bucket/obj"
	check "$name: SSE-C download" aws s3 cp --only-show-errors --sse-c AES256 --sse-c-key "$KEY" \
		"s3://$bucket/obj" "$tmp/out"
	check "$name: same bytes back" cmp -s "$tmp/in" "$tmp/out"
	aws s3api head-object --bucket "$bucket" --key obj >"$tmp/head" 2>&1 || true
	check "$name: HEAD without key is 400" grep -q '(400)' "$tmp/head"
	rclone_x lsl "X:$bucket" >"$tmp/lsl" 2>&1 || true
	check "$name: rclone lists the bucket" grep -q ' obj$' "$tmp/lsl"
	rclone_x cat --s3-sse-customer-algorithm AES256 --s3-sse-customer-key "$KEY" \
		"X:$bucket/obj" >"$tmp/rclone.out" 2>"$tmp/rclone.err" || true
	check "$name: rclone reads the SSE-C object" cmp -s "$tmp/in" "$tmp/rclone.out"

	aws s3 rm --only-show-errors "s3://$bucket/obj" || true
	aws s3api delete-bucket --bucket "$bucket" || true
	rm -rf "$tmp"
}

case ${1:-all} in
minio) selftest minio "$STATE/minio/env" Minio ;;
rgw) selftest rgw "$STATE/rgw/env" Ceph ;;
all)
	selftest minio "$STATE/minio/env" Minio
	selftest rgw "$STATE/rgw/env" Ceph
	;;
*) die "usage: $0 [minio|rgw|all]" ;;
esac

# Not in the "N passed, N failed" form: CI reads that form as a test
# runner's summary, and this is only a smoke test of the servers.
if [ "$failed" -eq 0 ]; then
	echo "selftest: all $passed checks ok"
else
	echo "selftest: $failed of $((passed + failed)) checks FAILED"
	exit 1
fi
