"""The real thing for the end-to-end tests: the node CLI's demo world (generated images on a local image server,
color-CLIP model, index) and `clipstream serve` on a spec written here."""

import os
import re
import shlex
import signal
import subprocess
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# Small counts and 32-px images keep the suite fast. Per-partition quotas (floor(count / P)) give 60 samples for
# P = 1, 2, 3 and 6, and 56 for P = 4.
COUNTS = {"red": 30, "blue": 18, "green": 12}


def cli_command():
    configured = os.environ.get("CLIPSTREAM_CLI")
    if configured:
        return shlex.split(configured)
    return ["node", str(REPO / "dist" / "cli" / "main.js")]


def ensure_cli_env():
    """serve() reads CLIPSTREAM_CLI; point it at this checkout's build unless the caller chose one."""
    os.environ.setdefault("CLIPSTREAM_CLI", shlex.join(cli_command()))


class DemoWorld:
    """`clipstream demo --world DIR`: builds the world, serves its images until stopped."""

    def __init__(self, directory, count=600, timeout=240):
        self.dir = Path(directory)
        self.process = subprocess.Popen(
            cli_command() + ["demo", "--world", str(self.dir), "--count", str(count)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.output = []
        ready = threading.Event()

        def drain():
            for raw in iter(self.process.stdout.readline, b""):
                line = raw.decode("utf-8", "replace").rstrip()
                self.output.append(line)
                if line.startswith("demo world ready:"):
                    ready.set()

        threading.Thread(target=drain, daemon=True).start()
        deadline = time.monotonic() + timeout
        while not ready.wait(0.1):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                tail = "\n".join(self.output[-30:])
                raise RuntimeError(f"`clipstream demo --world` did not get ready:\n{tail}")
        match = re.search(r"images=(\S+)", next(line for line in self.output if line.startswith("demo world ready:")))
        self.images_url = match.group(1) if match else None

    def spec(self, path, counts=COUNTS, size=32, encode_format="jpg", **extra):
        lines = [f"index: {self.dir / 'index'}", f"model: {self.dir / 'model'}", "queries:"]
        for name, count in counts.items():
            lines += [f"  - {{name: {name}, text: {name}, count: {count}, min_similarity: 0.9}}"]
        lines += [
            "seed: 0",
            f"image: {{size: {size}, resize_mode: center_crop, encode_format: {encode_format}, encode_quality: 90}}",
            "fetch: {concurrency: 32, timeout: 5, retries: 1, allow_private_networks: true}",
        ]
        lines += [f"{key}: {value}" for key, value in extra.items()]
        Path(path).write_text("\n".join(lines) + "\n")
        return Path(path)

    def stop(self):
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
