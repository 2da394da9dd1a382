#!/usr/bin/env bash
# `npm run lint` and the test script: ESLint, prettier (format check) and the function-length check on the
# TypeScript, ruff (lint + format check) on the Python client. `--fix` formats and fixes what can be.
# ruff comes from PyPI, pinned in scripts/lint/requirements.txt, into a small venv of its own
# (~/.cache/clipstream/venv-tools) made on first use.
#   scripts/lint.sh [--fix]
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
fix=0
[ "${1:-}" = "--fix" ] && fix=1
status=0

if [ $fix = 1 ]; then
  node_modules/.bin/eslint --no-error-on-unmatched-pattern --fix src test bench scripts web || status=1
else
  node_modules/.bin/eslint --no-error-on-unmatched-pattern src test bench scripts web || status=1
fi

PRETTIER_FILES=("src/**/*.ts" "test/**/*.ts" "bench/**/*.mjs" "scripts/**/*.mjs" "web/**/*.{ts,tsx}" eslint.config.js vitest.config.ts)
if [ $fix = 1 ]; then
  node_modules/.bin/prettier --log-level warn --write "${PRETTIER_FILES[@]}" || status=1
else
  node_modules/.bin/prettier --log-level warn --check "${PRETTIER_FILES[@]}" || { echo "lint: run \`npm run lint -- --fix\` to format the TypeScript" >&2; status=1; }
fi

# functions over ~60 lines of their own, without a reason written above them
node scripts/long-functions.mjs || status=1

tools="${CLIPSTREAM_TOOLS_VENV:-$HOME/.cache/clipstream/venv-tools}"
source "$root/scripts/lib/pinned-venv.sh"
pinned_venv lint "$tools" "$root/scripts/lint/requirements.txt" ||
  { echo "lint: could not install ruff (python3-venv and PyPI needed)" >&2; exit 1; }
if [ $fix = 1 ]; then
  "$tools/bin/ruff" check --fix python examples && "$tools/bin/ruff" format python examples || status=1
else
  "$tools/bin/ruff" check python examples || status=1
  "$tools/bin/ruff" format --check python examples || { echo "lint: run \`npm run lint -- --fix\` to format the Python client" >&2; status=1; }
fi
exit $status
