#!/usr/bin/env bash
# Stops a cluster started by start.sh and removes its directory. Usage: stop.sh DIR
set -euo pipefail
dir=${1:?usage: stop.sh DIR (as printed by start.sh)}
if [ ! -d "$dir/data" ]; then echo "stop.sh: $dir is not a start.sh cluster" >&2; exit 1; fi

bindir=""
for candidate in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
  if [ -x "$candidate/pg_ctl" ]; then bindir=$candidate; break; fi
done
as_owner=()
if [ "$(id -u)" = 0 ]; then as_owner=(runuser -u postgres --); fi

if [ -n "$bindir" ] && [ -f "$dir/data/postmaster.pid" ]; then
  # immediate: the data is thrown away, so there is nothing to flush.
  "${as_owner[@]}" "$bindir/pg_ctl" -D "$dir/data" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
fi
rm -rf "$dir"
