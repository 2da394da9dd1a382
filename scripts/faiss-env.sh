#!/usr/bin/env bash
# Makes the Python environment the faiss test fixtures are built with: a venv of its own (no system site packages)
# at $CLIPSTREAM_FAISS_VENV (default ~/.cache/clipstream/venv-faiss) with scripts/faiss/requirements.txt (pinned
# faiss-cpu, autofaiss, numpy < 2, pyarrow), once (scripts/lib/pinned-venv.sh). Prints the venv's python path on
# stdout, logs on stderr.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$root/scripts/lib/pinned-venv.sh"
venv="${CLIPSTREAM_FAISS_VENV:-$HOME/.cache/clipstream/venv-faiss}"
pinned_venv faiss-env "$venv" "$root/scripts/faiss/requirements.txt" 'import faiss, autofaiss, numpy, pyarrow'
echo "$venv/bin/python"
