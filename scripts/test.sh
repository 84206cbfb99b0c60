#!/usr/bin/env bash
# The whole test suite, as README's second command and .ci/run run it:
# installs the real clients and services the tests drive, builds, type-checks, lints, runs every test file
# on the embedded backends (filesystem + SQLite), then the server-level suites again on a real
# PostgreSQL and a real S3-compatible service (Ceph RGW), both started here once for the run.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/ensure-test-deps.sh
npm run --silent build
npx tsc --noEmit -p tsconfig.json
# Lint (typescript-eslint, and the layering of docs/architecture.md as import-boundary rules) and format.
npm run --silent lint

# One PostgreSQL cluster and one Ceph RGW for the whole run (tests create their own databases and
# buckets in them); without these variables a test process starts private ones.
pg_dir="" s3_dir=""
stop_services() {
  if [ -n "$pg_dir" ]; then bash scripts/postgres/stop.sh "$pg_dir" || true; fi
  if [ -n "$s3_dir" ]; then bash scripts/s3/stop.sh "$s3_dir" || true; fi
}
trap stop_services EXIT
value_of() { sed -n "s/^$1=//p" <<<"$2" | head -1; }

pg_out=$(bash scripts/postgres/start.sh)
pg_dir=$(value_of DIR "$pg_out")
s3_out=$(bash scripts/s3/start.sh)
s3_dir=$(value_of DIR "$s3_out")
export BERTH_TEST_POSTGRES_URL BERTH_TEST_S3_ENDPOINT BERTH_TEST_S3_ACCESS_KEY BERTH_TEST_S3_SECRET_KEY
BERTH_TEST_POSTGRES_URL=$(value_of URL "$pg_out")
BERTH_TEST_S3_ENDPOINT=$(value_of ENDPOINT "$s3_out")
BERTH_TEST_S3_ACCESS_KEY=$(value_of ACCESS_KEY "$s3_out")
BERTH_TEST_S3_SECRET_KEY=$(value_of SECRET_KEY "$s3_out")

# Unit tests live beside the code (src/**/*.test.ts); anything with a socket lives under test/.
mapfile -t files < <(find src test -name '*.test.ts' -not -path '*/node_modules/*' | sort)
node --import tsx --test --test-concurrency=2 --test-reporter=spec "${files[@]}"

# The same registry, auth, event and sync suites with metadata in PostgreSQL and blobs in S3: every
# in-process test server gets its own database and bucket (test/support/backends.ts).
mapfile -t backend_files < <(find test/integration test/auth test/admin test/webhooks test/sync test/import test/scale test/attestations test/cache test/lifecycle -name '*.test.ts' 2>/dev/null | sort)
echo "test.sh: again on PostgreSQL + S3 (${#backend_files[@]} files)"
BERTH_TEST_BACKEND=postgres+s3 node --import tsx --test --test-concurrency=2 --test-reporter=spec "${backend_files[@]}"
