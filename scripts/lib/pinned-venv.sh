# Sourced by the scripts that need a Python tool of their own (faiss-env.sh, s3-env.sh, lint.sh):
#   pinned_venv NAME VENV REQUIREMENTS_FILE [IMPORT_CHECK]
# makes VENV (no system site packages) holding exactly REQUIREMENTS_FILE, once: a stamp records the file's hash, so
# a venv already holding it is kept and an edited file reinstalls. Concurrent callers wait for one install (flock).
# Installs Debian's python3-venv when missing and root. Logs go to stderr; returns non-zero on failure.
pinned_venv() {
  local name="$1" venv="$2" requirements="$3" check="${4:-}"
  local python="${CLIPSTREAM_SYSTEM_PYTHON:-/usr/bin/python3}"
  local stamp="$venv/.clipstream-requirements" wanted
  wanted="$(sha256sum "$requirements" | cut -d' ' -f1)" || return 1
  mkdir -p "$(dirname "$venv")"
  (
    flock 9
    if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$wanted" ]; then exit 0; fi
    if ! "$python" -c 'import venv, ensurepip' >/dev/null 2>&1; then
      if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "$name: installing Debian's python3-venv …" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y -q python3-venv >/dev/null ||
          { apt-get update -q >/dev/null && apt-get install -y -q python3-venv >/dev/null; }
      fi
      "$python" -c 'import venv, ensurepip' >/dev/null 2>&1 ||
        { echo "$name: $python has no venv module; install python3-venv" >&2; exit 1; }
    fi
    echo "$name: creating $venv from ${requirements#"$CLIPSTREAM_SCRIPTS_ROOT/"} …" >&2
    rm -rf "$venv"
    "$python" -m venv "$venv" >&2 &&
      "$venv/bin/python" -m pip --disable-pip-version-check --no-input -q install -r "$requirements" >&2 || exit 1
    if [ -n "$check" ]; then "$venv/bin/python" -c "$check" >&2 || exit 1; fi
    echo "$wanted" >"$stamp"
  ) 9>"$venv.lock"
}
CLIPSTREAM_SCRIPTS_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
