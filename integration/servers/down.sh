#!/usr/bin/env bash
# down.sh: stop the test servers started by up.sh (only the processes
# recorded in their pid files). Data is kept: the next up.sh reuses it.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)

rc=0
"$HERE/minio.sh" stop || rc=1
"$HERE/rgw.sh" stop || rc=1
"$HERE/openstack.sh" stop || rc=1
exit $rc
