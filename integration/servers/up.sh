#!/usr/bin/env bash
# up.sh: install (if needed) and start both S3 test servers over TLS on
# 127.0.0.1 and Keystone + Barbican, then print where their client
# environments are:
#   MinIO     https://127.0.0.1:19000     env in $STATE/minio/env
#   Ceph RGW  https://127.0.0.1:17480     env in $STATE/rgw/env
#   Keystone  http://127.0.0.1:15000/v3   env in $STATE/openstack/env
#   Barbican  http://127.0.0.1:19311      (from Keystone's catalog)
# Idempotent: a second run with all servers up takes about a second.
# Use: `. "$STATE/rgw/env"` (or `eval "$(integration/servers/rgw.sh env)"`).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=common.sh
source "$HERE/common.sh"

need_root
"$HERE/install.sh" packages
"$HERE/tls.sh"

# The servers are independent: start them in parallel. On a fresh machine
# this overlaps the ~3 minute MinIO build with the Ceph cluster creation.
"$HERE/rgw.sh" start &
rgw_job=$!
{ "$HERE/install.sh" minio && "$HERE/minio.sh" start; } &
minio_job=$!
"$HERE/openstack.sh" start &
openstack_job=$!

rc=0
wait "$rgw_job" || { log "Ceph RGW failed to start"; rc=1; }
wait "$minio_job" || { log "MinIO failed to start"; rc=1; }
wait "$openstack_job" || { log "Keystone/Barbican failed to start"; rc=1; }
[ $rc -eq 0 ] || exit $rc

cat <<EOM
Test servers are up (state: $STATE)
  MinIO     https://127.0.0.1:19000     . $STATE/minio/env
  Ceph RGW  https://127.0.0.1:17480     . $STATE/rgw/env
  Keystone  http://127.0.0.1:15000/v3   . $STATE/openstack/env  (also appcred.env, other.env, clouds.yaml)
  Barbican  http://127.0.0.1:19311
  CA        $CA_CRT
EOM
