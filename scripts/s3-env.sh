#!/usr/bin/env bash
# Makes the venv of the tests' S3-compatible server: moto's server mode, pinned in scripts/s3/requirements.txt, at
# $CLIPSTREAM_S3_VENV (default ~/.cache/clipstream/venv-s3). Idempotent (a stamp records the requirements' hash);
# concurrent callers wait for one install (flock). Prints the path of moto_server on stdout, logs on stderr.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${CLIPSTREAM_SYSTEM_PYTHON:-/usr/bin/python3}"
venv="${CLIPSTREAM_S3_VENV:-$HOME/.cache/clipstream/venv-s3}"
requirements="$root/scripts/s3/requirements.txt"
stamp="$venv/.clipstream-requirements"
wanted="$(sha256sum "$requirements" | cut -d' ' -f1)"
mkdir -p "$(dirname "$venv")"
exec 9>"$venv.lock"
flock 9
if [ -x "$venv/bin/moto_server" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$wanted" ]; then
  echo "$venv/bin/moto_server"
  exit 0
fi
if ! "$python" -c 'import venv, ensurepip' >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "s3-env: installing Debian's python3-venv …" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q python3-venv >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q python3-venv >/dev/null; }
  fi
  "$python" -c 'import venv, ensurepip' >/dev/null 2>&1 || { echo "s3-env: $python has no venv module; install python3-venv" >&2; exit 1; }
fi
echo "s3-env: creating $venv (moto server, scripts/s3/requirements.txt) …" >&2
rm -rf "$venv"
"$python" -m venv "$venv" >&2
"$venv/bin/python" -m pip --disable-pip-version-check --no-input -q install -r "$requirements" >&2
echo "$wanted" >"$stamp"
echo "$venv/bin/moto_server"
