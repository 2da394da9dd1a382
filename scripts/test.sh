#!/usr/bin/env bash
# The project's test command (README: `npm test`). Runs every suite and ends with one line "N passed, N failed".
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$CLIPSTREAM_ROOT"
set +e
report="$(mktemp -d)"
node_modules/.bin/tsc -p tsconfig.test.json --noEmit && node_modules/.bin/tsc -p web/tsconfig.json
typecheck=$?
bash scripts/lint.sh
lint=$?
# The browser tests (test/web) drive Debian's chromium: installed here when missing (never a browser download).
bash scripts/chromium.sh
# The whole run refreshes the README's screenshots (docs/img); a single `npx vitest run` writes them to a temp folder.
CLIPSTREAM_SCREENSHOTS="${CLIPSTREAM_SCREENSHOTS:-1}" node_modules/.bin/vitest run --reporter=default --reporter=json --outputFile.json="$report/vitest.json" "$@"
bash scripts/test-python.sh "$report/pytest.txt"   # the Python client (python/tests); writes pytest's summary
node scripts/summarize-tests.mjs "$report" "$typecheck" "$lint"
status=$?
rm -rf "$report"
exit $status
