#!/usr/bin/env bash
# The Python client's suite (python/tests, pytest), end to end against the node CLI of this checkout.
#   scripts/test-python.sh [REPORT_FILE] [pytest args…]
# Sets up what it needs on a fresh machine: Debian's python3-torch and python3-torchvision (apt-get, when root;
# torchvision is optional), a venv with the system
# site packages (never PyPI's torch) at $CLIPSTREAM_PY_VENV (default ~/.cache/clipstream/venv-python) holding
# pytest, webdataset, torchdata and clip-retrieval (both --no-deps), and `pip install ./python`. Writes pytest's closing line to
# REPORT_FILE (scripts/summarize-tests.mjs adds it up); a set-up failure is written there as an error, never as a
# silent skip. Node >= 22 and dist/ come from scripts/env.sh.
report="${1:-/dev/null}"
shift || true
# Pessimistic until pytest has run: a crash anywhere below still counts as a failure.
echo "0 passed, 1 error (the python suite did not finish)" >"$report"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$root/scripts/env.sh"
set +e -uo pipefail
python="${CLIPSTREAM_SYSTEM_PYTHON:-/usr/bin/python3}"   # Debian's, where python3-torch installs
venv="${CLIPSTREAM_PY_VENV:-$HOME/.cache/clipstream/venv-python}"

fail() {
  echo "" >&2
  echo "!!! python tests NOT RUN: $* !!!" >&2
  echo "0 passed, 1 error (python tests not run: $*)" >"$report"
  exit 1
}

can_apt() { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; }
# Debian packages, as root: the package lists are refreshed only when an install from the current ones fails.
apt_install() {
  echo "test-python: installing Debian's $* (apt-get) …" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q "$@" >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q "$@" >/dev/null; }
}

has_system_torch() { [ -x "$python" ] && "$python" -c 'import torch, PIL, numpy, venv, ensurepip' >/dev/null 2>&1; }
if ! has_system_torch; then
  if can_apt; then
    apt_install python3-torch python3-pil python3-venv || fail "apt-get install python3-torch python3-pil python3-venv failed"
  fi
  has_system_torch || fail "$python cannot import torch and PIL; install Debian's python3-torch python3-pil python3-venv (as root)"
fi
# torchvision is optional for the client (its JPEG decoder is faster than PIL's); with it, both paths are tested.
if ! "$python" -c 'import torchvision' >/dev/null 2>&1 && can_apt; then
  apt_install python3-torchvision || echo "test-python: python3-torchvision could not be installed; its tests will be skipped" >&2
fi

if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import torch' >/dev/null 2>&1; then
  rm -rf "$venv"
  "$python" -m venv --system-site-packages "$venv" || fail "could not create the venv $venv"
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check --no-input -q)
if ! "$venv/bin/python" -c 'import pytest, webdataset' >/dev/null 2>&1; then
  echo "test-python: installing pytest and webdataset into $venv …" >&2
  "${pip[@]}" install 'pytest>=7' 'webdataset==1.0.2' || fail "pip install pytest webdataset failed"
fi
# The real clients our users hold, to test against: clip-retrieval's ClipClient (its clip_client module needs only
# requests; --no-deps keeps its torch, faiss and flask out).
if ! "$venv/bin/python" -c 'import requests, importlib.metadata as m; assert m.version("clip-retrieval") == "2.45.0"' >/dev/null 2>&1; then
  echo "test-python: installing clip-retrieval 2.45.0 (without its dependencies) and requests into $venv …" >&2
  "${pip[@]}" install 'requests>=2.28,<3' || fail "pip install requests failed"
  "${pip[@]}" install --no-deps 'clip-retrieval==2.45.0' || fail "pip install clip-retrieval failed"
fi
# torchdata for StatefulDataLoader, without its dependencies: it would pull PyPI's torch over Debian's.
if ! "$venv/bin/python" -c 'import torchdata.stateful_dataloader' >/dev/null 2>&1; then
  "${pip[@]}" install --no-deps 'torchdata==0.11.0' || echo "test-python: torchdata could not be installed; its tests will be skipped" >&2
fi
# img2dataset itself, only to be read: test_img2dataset_compat.py lists its download() options from its source and
# compares our exif field with exifread's (the version img2dataset pins). No dependencies: nothing imports img2dataset.
if ! "$venv/bin/python" -c 'import importlib.metadata as m, exifread, sys; sys.exit(m.version("img2dataset") != "1.47.0")' >/dev/null 2>&1; then
  echo "test-python: installing img2dataset 1.47.0 and exifread-nocycle 3.0.1 (no dependencies) into $venv …" >&2
  "${pip[@]}" install --no-deps 'img2dataset==1.47.0' 'exifread-nocycle==3.0.1' || fail "pip install img2dataset exifread-nocycle failed"
fi
"$venv/bin/python" -c 'import torch, sys; sys.exit("PyPI torch in the venv" if "dist-packages" not in torch.__file__ else 0)' ||
  fail "the venv's torch is not Debian's (a dependency pulled PyPI's torch?): remove $venv"
# Non-editable, and from a copy: the suite tests the package as pip installs it, and leaves no build/ behind.
build="$(mktemp -d)"
cp -r "$root/python" "$build/python"
"${pip[@]}" install --no-build-isolation --no-deps --force-reinstall "$build/python" || { rm -rf "$build"; fail "pip install ./python failed"; }
rm -rf "$build"

export CLIPSTREAM_CLI="${CLIPSTREAM_CLI:-$(command -v node) $root/dist/cli/main.js}"
log="$(mktemp)"
cd "$root/python/tests"
"$venv/bin/python" -m pytest -q -p no:cacheprovider -W ignore::UserWarning "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
summary="$(grep -E '^=*.* in [0-9.]+s' "$log" | tail -n 1)"
[ $status = 5 ] && summary="0 passed, 1 error (pytest collected no test)"
[ -n "$summary" ] || summary="0 passed, 1 error (pytest ended without a summary, exit $status)"
[ $status = 0 ] || [[ "$summary" =~ (failed|error) ]] || summary="$summary, 1 error (pytest exit $status)"
echo "$summary" >"$report"
rm -f "$log"
exit $status
