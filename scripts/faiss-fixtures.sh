#!/usr/bin/env bash
# Builds the faiss test fixtures (scripts/faiss/make_fixtures.py, with faiss-cpu and autofaiss from
# scripts/faiss-env.sh's venv) into a cache folder keyed by a hash of the generator and its pinned requirements,
# and prints that folder. A cached build is reused; concurrent callers wait for one build (flock).
#   scripts/faiss-fixtures.sh            → prints e.g. ~/.cache/clipstream/faiss-fixtures/3f2a…
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${CLIPSTREAM_FAISS_FIXTURES:-$HOME/.cache/clipstream/faiss-fixtures}"
key="$(cat "$root/scripts/faiss/make_fixtures.py" "$root/scripts/faiss/requirements.txt" | sha256sum | cut -c1-16)"
out="$cache/$key"
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9
if [ ! -f "$out/manifest.json" ]; then
  python="$(bash "$root/scripts/faiss-env.sh")"
  echo "faiss-fixtures: building $out (about a minute) …" >&2
  rm -rf "$out.partial"
  # Passive waits: OpenMP threads that spin crawl on a shared 2-core machine.
  OMP_WAIT_POLICY=PASSIVE "$python" "$root/scripts/faiss/make_fixtures.py" "$out.partial" >&2
  rm -rf "$out"
  mv "$out.partial" "$out"
fi
echo "$out"
