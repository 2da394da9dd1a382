"""serve(): runs `clipstream serve` for a spec or plan in a child process, for as long as Python needs it."""

import atexit
import collections
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import weakref

from .errors import ServeError

_READY = re.compile(r"clipstream serve: listening on (https?://[^\s,;]+)")
_LIVE = weakref.WeakSet()


def cli_command():
    """The clipstream command, the first of: $CLIPSTREAM_CLI (split like a shell would, e.g.
    `node /path/dist/cli/main.js`); `clipstream` on PATH (`npm install -g clipstream`); `node_modules/.bin/clipstream`
    in the working directory or a parent (`npm install clipstream`); the `clipstream` script of the checkout holding
    the working directory or this package (it sets itself up on first use: Node 24, npm ci, build)."""
    configured = os.environ.get("CLIPSTREAM_CLI", "").strip()
    if configured:
        return shlex.split(configured)
    found = shutil.which("clipstream") or _local_cli()
    if found is None:
        raise ServeError(
            "the clipstream CLI was not found: run Python from a clipstream checkout (or a project with "
            "`npm install clipstream`), put `clipstream` on PATH, or set CLIPSTREAM_CLI "
            "(e.g. CLIPSTREAM_CLI='node /path/to/clipstream/dist/cli/main.js')"
        )
    return [found]


def _local_cli():
    here = os.path.dirname(os.path.abspath(__file__))
    for start in (os.getcwd(), here):
        folder = start
        while True:
            for candidate in (
                os.path.join(folder, "node_modules", ".bin", "clipstream"),
                os.path.join(folder, "clipstream"),
            ):
                if os.path.isfile(candidate) and os.access(candidate, os.X_OK) and _is_clipstream(candidate):
                    return candidate
            parent = os.path.dirname(folder)
            if parent == folder:
                break
            folder = parent
    return None


def _is_clipstream(path):
    """The checkout's script sits beside a package.json named clipstream; npm's bin links are trusted by name."""
    if os.sep + "node_modules" + os.sep in path:
        return True
    try:
        with open(os.path.join(os.path.dirname(path), "package.json"), encoding="utf-8") as f:
            return json.load(f).get("name") == "clipstream"
    except (OSError, ValueError):
        return False


def _plain_spec(spec):
    """A spec dict as JSON values: a query's `embedding` may be a numpy array or a torch tensor, of shape (d,) or
    (1, d) as users save them; (n, d) with n > 1 and non-finite values are refused here, as the CLI refuses them."""
    queries = spec.get("queries")
    if not isinstance(queries, (list, tuple)):
        return spec
    plain = []
    for i, query in enumerate(queries):
        if isinstance(query, dict) and query.get("embedding") is not None:
            query = {**query, "embedding": _embedding_list(query["embedding"], f"queries[{i}].embedding")}
        plain.append(query)
    return {**spec, "queries": plain}


def _embedding_list(value, what):
    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().cpu().numpy()
    shape = getattr(value, "shape", None)
    if shape is not None:
        if len(shape) == 2 and shape[0] == 1:
            value = value[0]
        elif len(shape) != 1:
            raise ServeError(
                f"{what}: shape {tuple(shape)} holds {shape[0] if shape else 0} embeddings; a query is one "
                "embedding, shape (d,) or (1, d): give each as its own query"
            )
        value = value.tolist()
    values = list(value)
    for j, v in enumerate(values):
        if not isinstance(v, (int, float)):
            raise ServeError(f"{what}: expected numbers but value {j} is {v!r}")
        if v != v or v in (float("inf"), float("-inf")):
            shown = "NaN" if v != v else ("Infinity" if v > 0 else "-Infinity")
            raise ServeError(f"{what}: expected finite numbers but value {j} is {shown}")
    return [float(v) for v in values]


def _flags(options):
    args = []
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if value is None or value is False:
            continue
        if value is True:
            args.append(flag)
        elif isinstance(value, (list, tuple)):
            for item in value:
                args += [flag, str(item)]
        else:
            args += [flag, str(value)]
    return args


class Server:
    """A running `clipstream serve`. Use as a context manager, or call stop(); it is stopped at interpreter exit
    in any case.

    url: `http://127.0.0.1:PORT`; name: the stream's name; process: the Popen; log: its last output lines;
    token: the server's token (None without one).
    """

    def __init__(self, spec_or_plan, port=None, *, name=None, startup_timeout=300.0, echo=False, token=None, **options):
        self.name = name
        # Passed in the environment, not argv (other users of the machine can read a command line).
        self.token = token or None
        self.url = None
        self.process = None
        self._spec_file = None
        self._lines = collections.deque(maxlen=200)
        self._errors = collections.deque(maxlen=20)
        self._ready = threading.Event()
        self._echo = echo
        if isinstance(spec_or_plan, dict):
            text = json.dumps(_plain_spec(spec_or_plan), allow_nan=False)
            handle, self._spec_file = tempfile.mkstemp(prefix="clipstream-spec-", suffix=".json")
            with os.fdopen(handle, "w") as out:
                out.write(text)
            path = self._spec_file
            self.name = name or "stream"
        else:
            path = os.fspath(spec_or_plan)
            stem = os.path.basename(os.path.normpath(path)).split(".", 1)[0]
            self.name = name or (re.sub(r"[^A-Za-z0-9_-]+", "-", stem).strip("-") or "stream")
        self.args = cli_command() + ["serve", "--spec", f"{self.name}={path}", "--port", str(port or 0)]
        self.args += _flags(options)
        self._start(startup_timeout)

    @property
    def log(self):
        """The server's last 200 output lines (stdout and stderr)."""
        return "\n".join(self._lines)

    def _start(self, startup_timeout):
        kwargs = {}
        if os.name == "posix":
            kwargs["start_new_session"] = True  # one process group: stop() reaches a wrapper's children too
            if threading.current_thread() is threading.main_thread():
                kwargs["preexec_fn"] = _die_with_parent
        try:
            env = None if self.token is None else {**os.environ, "CLIPSTREAM_TOKEN": self.token}
            self.process = subprocess.Popen(
                self.args,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                **kwargs,
            )
        except OSError as err:
            self._cleanup()
            raise ServeError(f"could not run {shlex.join(self.args)}: {err}") from err
        _LIVE.add(self)
        readers = [
            threading.Thread(target=self._drain, args=(self.process.stdout, True), daemon=True),
            threading.Thread(target=self._drain, args=(self.process.stderr, False), daemon=True),
        ]
        for reader in readers:
            reader.start()
        deadline = time.monotonic() + startup_timeout
        while not self._ready.wait(0.05):
            if self.process.poll() is not None:
                for reader in readers:
                    reader.join(2)
                self._fail(f"clipstream serve exited with code {self.process.returncode} before it was ready")
            if time.monotonic() > deadline:
                self._fail(f"clipstream serve was not ready after {startup_timeout:g} s", kill=True)

    def _drain(self, pipe, is_stdout):
        # Always drained, so a chatty server never blocks on a full pipe.
        for raw in iter(pipe.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self._lines.append(line)
            if not is_stdout:
                self._errors.append(line)
            if self._echo:
                print(line, file=sys.stderr if not is_stdout else sys.stdout, flush=True)
            if is_stdout and not self._ready.is_set():
                match = _READY.search(line)
                if match:
                    self.url = match.group(1).rstrip("/.")
                    self._ready.set()
        pipe.close()

    def _fail(self, message, kill=False):
        returncode = self.process.returncode
        if kill:
            self.stop()
        output = self.log
        detail = "\n".join(self._errors) or "\n".join(output.splitlines()[-20:])
        self._cleanup()
        raise ServeError(
            f"{message}: {detail or '(no output)'}\ncommand: {shlex.join(self.args)}",
            returncode=returncode,
            stderr=output,
        )

    def stop(self, timeout=10.0):
        """SIGTERM to the server's process group, SIGKILL after `timeout` seconds. Idempotent."""
        process = self.process
        if process is not None and process.poll() is None:
            _signal_group(process, signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)
                process.wait(timeout)
        _LIVE.discard(self)
        self._cleanup()

    def _cleanup(self):
        if self._spec_file is not None:
            try:
                os.unlink(self._spec_file)
            except OSError:
                pass
            self._spec_file = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def __repr__(self):
        return f"<clipstream.Server {self.name} at {self.url}>"


def serve(spec_or_plan, port=None, **options):
    """Starts `clipstream serve --spec NAME=SPEC --port PORT [--OPTION VALUE …]` and waits until it is ready.

    spec_or_plan: a spec or plan file (YAML/JSON), or a spec as a dict (written to a temporary JSON file).
    port: None or 0 picks a free port.
    name: the stream's name (default: the file's stem, or "stream" for a dict).
    startup_timeout: seconds to wait for the ready line (default 300) before killing it and raising.
    echo: copy the server's output to ours.
    token: the server asks every request for it (given to it as CLIPSTREAM_TOKEN); `ClipStreamDataset(server)` sends
        it. Needed with `host=` other than loopback.
    Other keyword options become flags: `host="0.0.0.0"` → `--host 0.0.0.0`, `cache_dir=…` → `--cache-dir …`,
    True → a bare flag, a list → the flag repeated.

    Returns a Server (context manager) with `.url`. Raises ServeError carrying the server's own error message if it
    exits or is not ready in time.
    """
    return Server(spec_or_plan, port, **options)


def _signal_group(process, sig):
    try:
        if os.name == "posix":
            os.killpg(process.pid, sig)
        else:
            process.send_signal(sig)
    except (ProcessLookupError, PermissionError):
        pass


def _die_with_parent():
    """Linux: the server gets SIGTERM if this Python process dies without running atexit (SIGKILL, OOM)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - best effort, other platforms have atexit only
        pass


@atexit.register
def _stop_all():
    for server in list(_LIVE):
        server.stop(timeout=5.0)
