#!/usr/bin/env bash
# Makes sure Debian's redis-server is installed (apt-get, as root) for the queue tests and bench/distributed, and
# prints its path. The tests start their own server on 127.0.0.1 at a free port with a folder of their own
# (test/helpers/redis-server.ts); nothing here starts one. Concurrent callers wait for one install (flock).
set -euo pipefail
found() { command -v redis-server 2>/dev/null || { [ -x /usr/bin/redis-server ] && echo /usr/bin/redis-server; }; }
if path="$(found)"; then
  echo "$path"
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  exec 9>/var/lock/clipstream-redis-env.lock
  flock 9
  if ! found >/dev/null; then
    echo "redis-env: installing Debian's redis-server (apt-get) …" >&2
    export DEBIAN_FRONTEND=noninteractive
    # without recommends: only the server binary is needed
    apt-get install -y -q --no-install-recommends redis-server >/dev/null ||
      { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends redis-server >/dev/null; }
  fi
fi
found || { echo "redis-env: redis-server is not installed; install Debian's redis-server (as root)" >&2; exit 1; }
