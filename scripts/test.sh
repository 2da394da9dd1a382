#!/usr/bin/env bash
# The project's test command (README: `npm test`). Runs every suite and ends with one line "N passed, N failed".
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$CLIPSTREAM_ROOT"
set +e
report="$(mktemp -d)"
node_modules/.bin/tsc -p tsconfig.test.json --noEmit
typecheck=$?
bash scripts/lint.sh
lint=$?
node_modules/.bin/vitest run --reporter=default --reporter=json --outputFile.json="$report/vitest.json" "$@"
bash scripts/test-python.sh "$report/pytest.txt"   # the Python client (python/tests); writes pytest's summary
node scripts/summarize-tests.mjs "$report" "$typecheck" "$lint"
status=$?
rm -rf "$report"
exit $status
