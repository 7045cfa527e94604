#!/bin/sh
# verify-units.sh PREFIX: systemd-analyze verify of the installed units, as
# an instance of each template; any complaint fails. Skipped where systemd
# is not installed.
set -eu
prefix=${1:-/usr/local}
if ! command -v systemd-analyze >/dev/null 2>&1; then
	echo "verify-units: no systemd-analyze here; units not checked"
	exit 0
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
status=0
for unit in "$prefix/lib/systemd/system/ssecfs@.service" "$prefix/lib/systemd/user/ssecfs@.service"; do
	cp "$unit" "$dir/ssecfs@check.service"
	out=$(systemd-analyze verify --man=yes "$dir/ssecfs@check.service" 2>&1) || status=1
	if [ -n "$out" ]; then
		echo "$unit:"
		echo "$out"
		status=1
	fi
done
[ $status -eq 0 ] && echo "verify-units: the units are valid"
exit $status
