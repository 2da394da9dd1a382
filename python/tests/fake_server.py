"""A stand-in for `clipstream serve`'s stream endpoints, for fault injection only (cut, stall, 5xx, refuse).

It follows docs/streaming.md's wire format with a trivial plan: query q has `count` candidates, partition p
delivers candidates i % P == p, floor(count / P) of each, interleaved by (epoch, p). The end-to-end tests use the
real node server; this one exists because a real server cannot be told to die after exactly k samples.
"""

import io
import json
import random
import socket
import tarfile
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from PIL import Image


def member(name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 0
    return info.tobuf(format=tarfile.USTAR_FORMAT) + data + bytes((-len(data)) % 512)


class FakeStream:
    def __init__(self, name="fake", counts=(("red", 24), ("blue", 12))):
        self.name = name
        self.counts = list(counts)

    def partition(self, p, P, epoch):
        """The (query, candidate index) pairs partition p delivers, in order."""
        picks = []
        for query, count in self.counts:
            stripe = [i for i in range(count) if i % P == p][: count // P]
            picks += [(query, i) for i in stripe]
        random.Random(f"{epoch}-{p}").shuffle(picks)
        return picks


_PNG = {}


def png(query):
    if query not in _PNG:
        buf = io.BytesIO()
        Image.new("RGB", (8, 6), (200, 30, 30) if query == "red" else (30, 30, 200)).save(buf, "PNG")
        _PNG[query] = buf.getvalue()
    return _PNG[query]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _json(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):  # noqa: N802
        server = self.server
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        server.requests.append(self.path)
        if server.fail_status:
            status = server.fail_status.pop(0)
            return self._json(status, {"error": f"injected {status}"})
        if url.path == "/streams":
            return self._json(
                200,
                {
                    "streams": [
                        {"name": s.name, "queries": [{"name": q} for q, _ in s.counts], "seed": 0}
                        for s in server.streams
                    ]
                },
            )
        parts = url.path.split("/")
        stream = next((s for s in server.streams if len(parts) == 4 and s.name == parts[2]), None)
        if stream is None:
            return self._json(404, {"error": f"unknown stream {url.path}"})
        P = int(query.get("partitions", 1))
        epoch = int(query.get("epoch", 0))
        if parts[3] == "info":
            per = len(stream.partition(0, P, 0))
            quotas = [{"name": q, "quota": count // P} for q, count in stream.counts]
            return self._json(200, {"partitions": P, "samples_per_partition": per, "total": per * P, "queries": quotas})
        p = int(parts[3].removesuffix(".tar"))
        if not 0 <= p < P:
            return self._json(400, {"error": f"partition {p} is not in 0..{P - 1}"})
        start = 0
        if "state" in query:
            state = json.loads(query["state"])
            if state["P"] != P or state["p"] != p or state["epoch"] != epoch:
                return self._json(400, {"error": "state: made for another partition count, partition or epoch"})
            start = state["delivered"]
        picks = stream.partition(p, P, epoch)
        cut = server.cut_after.pop(0) if server.cut_after else None
        self.send_response(200)
        self.send_header("Content-Type", "application/x-tar")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("X-Clipstream-Samples", str(len(picks) - start))
        self.end_headers()
        sent = 0
        for n in range(start, len(picks)):
            if cut is not None and sent == cut:
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if n == server.stall_at and server.stalls > 0:
                server.stalls -= 1
                time.sleep(server.stall_seconds)
                return
            q, i = picks[n]
            key = f"e{epoch}p{p}s{n}"
            meta = {"id": f"{q}-{i}", "query": q, "partition": p, "epoch": epoch, "repeat": False, "caption": None}
            state = {"v": 1, "plan": "fake", "p": p, "P": P, "epoch": epoch, "delivered": n + 1}
            chunk = b"".join(
                [
                    member(f"{key}.png", png(q)),
                    member(f"{key}.txt", f"a {q} square".encode()),
                    member(f"{key}.json", json.dumps(meta).encode()),
                    member(f"{key}.state", json.dumps(state, separators=(",", ":")).encode()),
                ]
            )
            self._chunk(chunk)
            sent += 1
        self._chunk(bytes(1024))
        self.wfile.write(b"0\r\n\r\n")

    def _chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()


class FakeServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, streams=None):
        super().__init__(("127.0.0.1", 0), Handler)
        self.streams = streams or [FakeStream()]
        self.requests = []
        self.cut_after = []  # per request: close the connection after this many samples
        self.fail_status = []  # per request: answer this status instead
        self.stall_at = None  # hold the connection open, silent, before sending the sample at this position
        self.stalls = 1_000_000  # … this many times
        self.stall_seconds = 30.0
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        self.thread = threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self):
        self.shutdown()
        self.server_close()
