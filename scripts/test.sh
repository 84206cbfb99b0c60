#!/usr/bin/env bash
# The whole test suite, as README's second command and .ci/run run it:
# installs the real clients the tests drive, builds, type-checks, runs every test file.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/ensure-test-deps.sh
npm run --silent build
npx tsc --noEmit -p tsconfig.json

# Unit tests live beside the code (src/**/*.test.ts); anything with a socket lives under test/.
mapfile -t files < <(find src test -name '*.test.ts' -not -path '*/node_modules/*' | sort)
node --import tsx --test --test-concurrency=2 --test-reporter=spec "${files[@]}"
