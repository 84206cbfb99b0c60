#!/usr/bin/env bash
# Stops the service scripts/s3/start.sh started in DIR (only its own daemons, by their pid files)
# and deletes DIR. Safe to call twice.
set -uo pipefail
dir=${1:-}
[ -n "$dir" ] || { echo "usage: $0 DIR" >&2; exit 2; }
[ -d "$dir" ] || exit 0
[ -f "$dir/ceph.conf" ] || { echo "s3/stop.sh: $dir is not a directory start.sh made" >&2; exit 2; }
# The watchdog start.sh may have left (it calls this script itself when its owner is gone).
watchdog=$(cat "$dir/run/watchdog" 2>/dev/null || true)
[ -n "$watchdog" ] && [ "$watchdog" != "$$" ] && [ "$watchdog" != "$PPID" ] && kill "$watchdog" 2>/dev/null
pids=$(cat "$dir"/run/*.pid 2>/dev/null | tr '\n' ' ')
[ -n "${pids// }" ] && kill $pids 2>/dev/null
for _ in $(seq 50); do
  alive=0
  for p in $pids; do kill -0 "$p" 2>/dev/null && alive=1; done
  [ "$alive" = 0 ] && break
  sleep 0.1
done
for p in $pids; do kill -9 "$p" 2>/dev/null; done
rm -rf "$dir"
exit 0
