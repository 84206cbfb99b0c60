#!/usr/bin/env bash
# Berth vs CNCF Distribution benchmark: `npm run bench [-- options]`.
# Installs what it needs (Debian 12, as root), builds Berth if needed, then runs
# bench/run.ts, which writes docs/benchmarks.md and bench/results/*.json.
# Options are passed to bench/run.ts (see the header of that file), e.g.
#   npm run bench -- --quick
#   npm run bench -- --candidate distribution     # harness self-test
#   npm run bench -- --only auth                  # only the Berth auth bench (bench/auth.ts)
#   npm run bench -- --only import                # only the import bench (bench/import.ts)
#   npm run bench -- --only console               # only the web console bench (bench/console.ts; needs chromium)
#   npm run bench -- --only lifecycle             # only the last-pull tracking bench (bench/lifecycle.ts)
#   npm run bench -- --only s3                    # only Berth vs Distribution on S3 (bench/s3.ts; needs Ceph RGW)
#   npm run bench -- --only cache                 # only the pull-through cache bench (bench/cache.ts)
#   npm run bench -- --only operability           # only manifest GET with metrics + tracing vs without (bench/operability.ts)
#   npm run bench -- --only roundtrips            # only database round trips per request type (bench/roundtrips.ts)
#   npm run bench -- --only push-limits           # only a 1 GiB push against dd and a minimal ingest server (bench/push-limits.ts)
#   npm run bench -- --only replicas              # only two replicas (one PostgreSQL, one storage directory) against one (bench/replicas.ts)
#   npm run bench -- --only cli                   # only client start-up: each client command's time to its first connection (bench/cli.ts)
#   npm run bench -- --only soak                  # only ten minutes of steady mixed load, memory and event-loop delay sampled (bench/soak.ts)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

need=()
command -v docker-registry >/dev/null 2>&1 || need+=(docker-registry)
command -v skopeo >/dev/null 2>&1 || need+=(skopeo)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v findmnt >/dev/null 2>&1 || need+=(util-linux)
command -v gcc >/dev/null 2>&1 || need+=(gcc libc6-dev) # builds bench/loadgen.c (HEAD load)
if [ "${#need[@]}" -gt 0 ]; then
  echo "bench: installing ${need[*]}" >&2
  if [ "$(id -u)" -ne 0 ]; then
    echo "bench: need root (or preinstalled packages) to apt-get install ${need[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  # The Debian package enables a registry service on :5000; the bench starts its own.
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet docker-registry 2>/dev/null; then
    systemctl stop docker-registry || true
  fi
fi
if [ ! -f /etc/containers/policy.json ]; then
  # skopeo refuses to copy without a signature policy; accept everything (local bench only).
  mkdir -p /etc/containers
  printf '{"default":[{"type":"insecureAcceptAnything"}]}\n' > /etc/containers/policy.json
fi

if [ ! -x node_modules/.bin/tsx ] || [ ! -x node_modules/.bin/tsc ]; then
  echo "bench: installing npm dependencies (npm ci)" >&2
  npm ci --no-audit --no-fund
fi

# Build when dist/ is missing or older than any source file.
if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
  candidate=berth
  prev=""
  for a in "$@"; do
    if [ "$prev" = "--candidate" ]; then candidate="$a"; fi
    case "$a" in --candidate=*) candidate="${a#--candidate=}" ;; esac
    prev="$a"
  done
  if [ "$candidate" = berth ]; then
    if [ ! -f dist/bin/berth.js ] || [ -n "$(find src console -newer dist/bin/berth.js -type f -print -quit 2>/dev/null)" ] || [ ! -f dist/web/index.html ]; then
      echo "bench: building Berth (npm run build)" >&2
      npm run build
    fi
  fi
fi

# The Berth-only auth bench (bench/auth.ts) runs after the main one and inserts its section into
# the doc the main run just wrote. "auth" is a group name for --only: `--only auth` runs only it,
# `--only raw,auth` both (bench/run.ts gets `--only raw`), `--only raw` only the main bench.
# Self-tests (`--candidate distribution`) skip it; `--report-only` re-inserts its last section.
main_args=()
run_main=1
run_auth=1
run_import=1
run_console=1
run_lifecycle=1
run_s3=1
run_cache=1
run_operability=1
run_roundtrips=1
run_push_limits=1
run_soak=1
run_replicas=1
run_cli=1
expect_only=0
for a in "$@"; do
  if [ "$expect_only" = 1 ]; then
    expect_only=0
    value="$a"
  else
    case "$a" in
      --only) expect_only=1; continue ;;
      --only=*) value="${a#--only=}" ;;
      *) main_args+=("$a"); continue ;;
    esac
  fi
  rest=""
  has_auth=0
  has_import=0
  has_console=0
  has_lifecycle=0
  has_s3=0
  has_cache=0
  has_operability=0
  has_roundtrips=0
  has_push_limits=0
  has_soak=0
  has_replicas=0
  has_cli=0
  IFS=',' read -r -a parts <<< "$value"
  for p in "${parts[@]}"; do
    p="${p//[[:space:]]/}"
    if [ -z "$p" ]; then continue; fi
    if [ "$p" = auth ]; then has_auth=1; elif [ "$p" = import ]; then has_import=1; elif [ "$p" = console ]; then has_console=1; elif [ "$p" = lifecycle ]; then has_lifecycle=1; elif [ "$p" = s3 ]; then has_s3=1; elif [ "$p" = cache ]; then has_cache=1; elif [ "$p" = operability ]; then has_operability=1; elif [ "$p" = roundtrips ]; then has_roundtrips=1; elif [ "$p" = push-limits ]; then has_push_limits=1; elif [ "$p" = soak ]; then has_soak=1; elif [ "$p" = replicas ]; then has_replicas=1; elif [ "$p" = cli ]; then has_cli=1; else rest="${rest:+$rest,}$p"; fi
  done
  run_auth=$has_auth
  run_import=$has_import
  run_console=$has_console
  run_lifecycle=$has_lifecycle
  run_s3=$has_s3
  run_cache=$has_cache
  run_operability=$has_operability
  run_roundtrips=$has_roundtrips
  run_push_limits=$has_push_limits
  run_soak=$has_soak
  run_replicas=$has_replicas
  run_cli=$has_cli
  if [ -n "$rest" ]; then run_main=1; main_args+=(--only "$rest"); else run_main=0; fi
done
if [ "$expect_only" = 1 ]; then main_args+=(--only); fi # a dangling --only: let run.ts refuse it
if [ "$run_main" = 1 ]; then
  node --import tsx bench/run.ts "${main_args[@]}"
fi
if [ "$run_auth" = 1 ]; then
  node --import tsx bench/auth.ts "$@"
fi
# The import bench (Berth import vs skopeo copy --all) inserts its own section the same way.
if [ "$run_import" = 1 ]; then
  node --import tsx bench/import.ts "$@"
fi
# The console bench (JavaScript size, first render of the repository list with 10,000 repositories in
# Debian's Chromium) inserts its own section too; without chromium a plain run skips it with a note.
if [ "$run_console" = 1 ]; then
  if command -v chromium >/dev/null 2>&1; then
    node --import tsx bench/console.ts "$@"
  else
    echo "bench: chromium not installed (scripts/ensure-test-deps.sh); skipping the console bench" >&2
  fi
fi
# The cache bench (a cold pull through the pull-through cache vs straight from Distribution, a warm
# pull vs Berth's own blob GET) inserts its own section the same way.
if [ "$run_cache" = 1 ]; then
  node --import tsx bench/cache.ts "$@"
fi
# The lifecycle bench (manifest GET with last-pull tracking on vs off) inserts its own section too.
if [ "$run_lifecycle" = 1 ]; then
  node --import tsx bench/lifecycle.ts "$@"
fi
# The operability bench (manifest GET with metrics and tracing configured vs without) inserts its own section too.
if [ "$run_operability" = 1 ]; then
  node --import tsx bench/operability.ts "$@"
fi
# Database round trips per request type (PostgreSQL, and SQLite for comparison): counts, not timings.
if [ "$run_roundtrips" = 1 ]; then
  node --import tsx bench/roundtrips.ts "$@"
fi
# A large push against what the machine can do (dd, a minimal ingest server), with a profile.
if [ "$run_push_limits" = 1 ]; then
  node --import tsx bench/push-limits.ts "$@"
fi
# Two replicas sharing one PostgreSQL database and one storage directory, against one.
if [ "$run_replicas" = 1 ]; then
  node --import tsx bench/replicas.ts "$@"
fi
# Client start-up: every client command's time to its first connection (or exit), against one Berth.
if [ "$run_cli" = 1 ]; then
  node --import tsx bench/cli.ts "$@"
fi
# Ten minutes of steady mixed load (pushes, pulls, token grants): memory and event-loop delay over time.
if [ "$run_soak" = 1 ]; then
  node --import tsx bench/soak.ts "$@"
fi
# The S3 bench (Berth and Distribution both on one throwaway Ceph RGW) inserts its own section too.
# It needs the Ceph daemons (scripts/ensure-test-deps.sh installs them); without them a plain
# `npm run bench` skips it with a note, `--only s3` fails.
if [ "$run_s3" = 1 ]; then
  if command -v radosgw >/dev/null 2>&1 && command -v ceph-mon >/dev/null 2>&1 && command -v ceph-osd >/dev/null 2>&1 && command -v ceph >/dev/null 2>&1; then
    node --import tsx bench/s3.ts "$@"
  elif [ "$run_main" = 1 ] || [ "$run_auth" = 1 ] || [ "$run_import" = 1 ] || [ "$run_console" = 1 ] || [ "$run_cache" = 1 ] || [ "$run_lifecycle" = 1 ] || [ "$run_operability" = 1 ] || [ "$run_roundtrips" = 1 ] || [ "$run_push_limits" = 1 ] || [ "$run_soak" = 1 ] || [ "$run_replicas" = 1 ] || [ "$run_cli" = 1 ]; then
    echo "bench: radosgw/ceph-mon/ceph-osd/ceph not installed (scripts/ensure-test-deps.sh); skipping the S3 bench" >&2
  else
    echo "bench: the S3 bench needs radosgw, ceph-mon, ceph-osd and ceph (scripts/ensure-test-deps.sh)" >&2
    exit 1
  fi
fi
