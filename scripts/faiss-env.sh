#!/usr/bin/env bash
# Makes the Python environment the faiss test fixtures are built with: a venv of its own (no system site packages)
# at $CLIPSTREAM_FAISS_VENV (default ~/.cache/clipstream/venv-faiss) with scripts/faiss/requirements.txt (pinned
# faiss-cpu, autofaiss, numpy < 2, pyarrow). Idempotent: a venv already holding exactly these requirements is
# kept (a stamp file records the requirements' hash). Prints the venv's python path on stdout, logs on stderr.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${CLIPSTREAM_SYSTEM_PYTHON:-/usr/bin/python3}"
venv="${CLIPSTREAM_FAISS_VENV:-$HOME/.cache/clipstream/venv-faiss}"
requirements="$root/scripts/faiss/requirements.txt"
stamp="$venv/.clipstream-requirements"
wanted="$(sha256sum "$requirements" | cut -d' ' -f1)"

if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$wanted" ]; then
  echo "$venv/bin/python"
  exit 0
fi
if ! "$python" -c 'import venv, ensurepip' >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "faiss-env: installing Debian's python3-venv …" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q python3-venv >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q python3-venv >/dev/null; }
  fi
  "$python" -c 'import venv, ensurepip' >/dev/null 2>&1 || { echo "faiss-env: $python has no venv module; install python3-venv" >&2; exit 1; }
fi
echo "faiss-env: creating $venv from scripts/faiss/requirements.txt …" >&2
rm -rf "$venv"
"$python" -m venv "$venv" >&2
"$venv/bin/python" -m pip --disable-pip-version-check --no-input -q install -r "$requirements" >&2
"$venv/bin/python" -c 'import faiss, autofaiss, numpy, pyarrow' >&2
echo "$wanted" >"$stamp"
echo "$venv/bin/python"
