#!/usr/bin/env bash
# Starts a throwaway S3-compatible service for tests: a single-node Ceph cluster (1 monitor, 1 OSD
# whose data lives in RAM via memstore, no manager) and a RADOS Gateway, all on 127.0.0.1 ports
# picked free at start, so several can run side by side. Nothing is installed or touched outside a
# fresh temporary directory. Needs radosgw, ceph-mon, ceph-osd, ceph-common (scripts/ensure-test-deps.sh).
#
# Prints, on success:
#   DIR=<dir to pass to stop.sh>
#   ENDPOINT=http://127.0.0.1:<port>
#   ACCESS_KEY=<key id>
#   SECRET_KEY=<secret>
# Env: MEMSTORE_BYTES (RAM for object data; default 4 GiB, allocated lazily).
#      OWNER_PID: stop the service by itself once that process is gone (a test process that was
#      killed before it could run stop.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
MEMSTORE_BYTES=${MEMSTORE_BYTES:-4294967296}

# A port nobody listens on right now. Another process may grab it before our daemon binds it; the
# caller below retries the whole start with new ports when a daemon fails to come up.
free_port() {
  node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{process.stdout.write(String(s.address().port));s.close()})"
}

random_hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }

wait_for() { # <tries of 0.1 s> <command...>
  local tries=$1; shift
  for _ in $(seq "$tries"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  return 1
}

attempt() {
  local dir=$1 mon_port rgw_port fsid conf keyring osd_uuid osd_id
  mon_port=$(free_port)
  rgw_port=$(free_port)
  while [ "$rgw_port" = "$mon_port" ]; do rgw_port=$(free_port); done
  mkdir -p "$dir"/{run,log,mon.a,osd.0,rgw}
  fsid=$(cat /proc/sys/kernel/random/uuid)
  conf=$dir/ceph.conf
  keyring=$dir/keyring
  # One replica, few placement groups, msgr v1 only, everything (sockets, pids, logs) inside $dir.
  cat >"$conf" <<CONF
[global]
fsid = $fsid
mon host = v1:127.0.0.1:$mon_port
ms bind msgr2 = false
public addr = 127.0.0.1
keyring = $keyring
run dir = $dir/run
admin socket = $dir/run/\$name.asok
pid file = $dir/run/\$name.pid
log file = $dir/log/\$name.log
mon data = $dir/mon.\$id
osd data = $dir/osd.\$id
osd objectstore = memstore
memstore device bytes = $MEMSTORE_BYTES
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
osd crush update on start = false
osd class update on start = false
osd op num shards = 2
osd op num threads per shard = 1
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon max pg per osd = 1000
mon data avail warn = 1
mon data avail crit = 0
auth allow insecure global id reclaim = false
paxos propose interval = 0.05
[client.rgw]
rgw frontends = beast endpoint=127.0.0.1:$rgw_port tcp_nodelay=1
rgw data = $dir/rgw
rgw thread pool size = 64
# One bucket index shard: a listing is then one OSD read instead of a merge of 11.
rgw override bucket index max shards = 1
CONF
  ceph-authtool --create-keyring "$keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
  ceph-authtool "$keyring" --gen-key -n client.admin --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' >/dev/null
  ceph-authtool "$keyring" --gen-key -n osd.0 --cap mon 'allow profile osd' --cap osd 'allow *' --cap mgr 'allow profile osd' >/dev/null
  ceph-authtool "$keyring" --gen-key -n client.rgw --cap mon 'allow rw' --cap osd 'allow rwx' --cap mgr 'allow rw' >/dev/null
  monmaptool --create --fsid "$fsid" --addv a "[v1:127.0.0.1:$mon_port]" "$dir/monmap" >/dev/null
  ceph-mon -c "$conf" --mkfs -i a --monmap "$dir/monmap" --keyring "$keyring" 2>>"$dir/log/mkfs.log"
  ceph-mon -c "$conf" -i a 2>>"$dir/log/mon-start.log" || return 1
  osd_uuid=$(cat /proc/sys/kernel/random/uuid)
  osd_id=$(ceph -c "$conf" --connect-timeout 20 osd new "$osd_uuid" 0 2>>"$dir/log/admin.log") || return 1
  ceph -c "$conf" osd crush add "osd.$osd_id" 1.0 root=default >/dev/null 2>>"$dir/log/admin.log" || return 1
  ceph-osd -c "$conf" -i "$osd_id" --mkfs --osd-uuid "$osd_uuid" 2>>"$dir/log/mkfs.log" || return 1
  ceph-osd -c "$conf" -i "$osd_id" 2>>"$dir/log/osd-start.log" || return 1
  osd_up() { ceph -c "$conf" osd dump 2>/dev/null | grep -q "^osd.$osd_id up"; }
  wait_for 300 osd_up || { echo "s3/start.sh: the OSD did not come up" >&2; return 1; }
  ACCESS_KEY=berth$(random_hex 8)
  SECRET_KEY=$(random_hex 20)
  radosgw-admin -c "$conf" user create --uid=berth-test --display-name=berth-test \
    --access-key="$ACCESS_KEY" --secret-key="$SECRET_KEY" >/dev/null 2>>"$dir/log/admin.log" || return 1
  radosgw -c "$conf" -n client.rgw 2>>"$dir/log/rgw-start.log" || return 1
  ENDPOINT=http://127.0.0.1:$rgw_port
  wait_for 600 curl -sf -o /dev/null "$ENDPOINT/" || { echo "s3/start.sh: the gateway did not answer" >&2; return 1; }
  # The first bucket creation makes RGW create its index and data pools (~2 s); do it now so the
  # first test does not pay for it.
  local auth=(--aws-sigv4 aws:amz:us-east-1:s3 -u "$ACCESS_KEY:$SECRET_KEY" -H x-amz-content-sha256:UNSIGNED-PAYLOAD -sf -o /dev/null)
  curl "${auth[@]}" -X PUT "$ENDPOINT/berth-warmup" &&
    curl "${auth[@]}" -X PUT --data-binary x "$ENDPOINT/berth-warmup/x" &&
    curl "${auth[@]}" -X DELETE "$ENDPOINT/berth-warmup/x" &&
    curl "${auth[@]}" -X DELETE "$ENDPOINT/berth-warmup" || { echo "s3/start.sh: the gateway refused the warm-up requests" >&2; return 1; }
}

for try in 1 2 3; do
  dir=$(mktemp -d "${TMPDIR:-/tmp}/berth-s3.XXXXXX")
  if attempt "$dir"; then
    if [ -n "${OWNER_PID:-}" ]; then
      # Detached, with no inherited stdio, so whoever reads our output is not kept waiting.
      setsid bash -c 'while kill -0 "$1" 2>/dev/null && [ -d "$3" ]; do sleep 2; done; bash "$2" "$3"' \
        watchdog "$OWNER_PID" "$here/stop.sh" "$dir" </dev/null >/dev/null 2>&1 &
      echo $! >"$dir/run/watchdog"
    fi
    echo "DIR=$dir"
    echo "ENDPOINT=$ENDPOINT"
    echo "ACCESS_KEY=$ACCESS_KEY"
    echo "SECRET_KEY=$SECRET_KEY"
    exit 0
  fi
  echo "s3/start.sh: attempt $try failed; logs:" >&2
  tail -n 5 "$dir"/log/*.log >&2 2>/dev/null || true
  bash "$here/stop.sh" "$dir" >/dev/null 2>&1 || true
done
echo "s3/start.sh: could not start Ceph RGW" >&2
exit 1
