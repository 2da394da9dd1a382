#!/usr/bin/env bash
# Makes the venv of the tests' S3-compatible server: moto's server mode, pinned in scripts/s3/requirements.txt, at
# $CLIPSTREAM_S3_VENV (default ~/.cache/clipstream/venv-s3), once (scripts/lib/pinned-venv.sh). Prints the path of
# moto_server on stdout, logs on stderr.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$root/scripts/lib/pinned-venv.sh"
venv="${CLIPSTREAM_S3_VENV:-$HOME/.cache/clipstream/venv-s3}"
pinned_venv s3-env "$venv" "$root/scripts/s3/requirements.txt"
echo "$venv/bin/moto_server"
