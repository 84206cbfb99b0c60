#!/usr/bin/env bash
# Starts a throwaway PostgreSQL cluster for tests: 127.0.0.1 only, a free port (or $PORT), data in a
# fresh temp dir, fsync off (nothing here must survive a crash), trust auth (loopback only)
# except for members of role berth_password_login (see below).
# initdb refuses to run as root, so as root the cluster runs as the `postgres` user via runuser.
# Prints DIR=, PORT= and URL= lines (an admin URL for user postgres); stop with stop.sh "$DIR".
set -euo pipefail

bindir=""
for candidate in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
  if [ -x "$candidate/initdb" ]; then bindir=$candidate; break; fi
done
if [ -z "$bindir" ]; then
  echo "start.sh: no PostgreSQL binaries under /usr/lib/postgresql/*/bin (run scripts/ensure-test-deps.sh)" >&2
  exit 1
fi

if [ -z "${PORT:-}" ]; then
  # Ask the kernel for a free port; a tiny race with other processes is acceptable for tests.
  PORT=$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/berth-pg.XXXXXX")
chmod 755 "$dir"
as_owner=()
if [ "$(id -u)" = 0 ]; then
  chown postgres:postgres "$dir"
  as_owner=(runuser -u postgres --)
fi

if ! "${as_owner[@]}" "$bindir/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 -N >"$dir/initdb.log" 2>&1; then
  echo "start.sh: initdb failed, see $dir/initdb.log" >&2
  exit 1
fi
# Members of role berth_password_login must send a password (scram) even on loopback, so tests can
# check password handling; the role need not exist (the line then matches nobody). Everyone else: trust.
hba="$dir/data/pg_hba.conf"
{
  echo "host all +berth_password_login 127.0.0.1/32 scram-sha-256"
  cat "$hba"
} >"$hba.new"
"${as_owner[@]}" cp "$hba.new" "$hba"
rm -f "$hba.new"

if ! "${as_owner[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
  -o "-p $PORT -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
  start >/dev/null; then
  echo "start.sh: PostgreSQL did not start, see $dir/server.log" >&2
  exit 1
fi

echo "DIR=$dir"
echo "PORT=$PORT"
echo "URL=postgres://postgres@127.0.0.1:$PORT/postgres"
