"""bench/torch, the measuring side (started by bench/torch/run.mjs, which builds the world and the spec).

Serves the spec with `clipstream.serve`, fills the server's cache with one raw pass (epoch 0: the downloads), then
alternates, for each round, on the warm cache (every later epoch holds the same samples in a new order, so the
server answers from its disk cache and the network is out of the picture):
  raw     the server's own rate: partitions 0..P-1 of P = workers, one thread each reading the raw tar over HTTP
          in 1 MB reads and counting `.state` headers; no decoding
  loader  DataLoader(ClipStreamDataset(url, decode="tensor"), batch_size, num_workers=workers), counting samples
          of the batches, from iter() (workers start) to the end
Prints both and loader ÷ raw (best of the rounds each). Then, to say what limited it: the loader with
decode="raw", the CPU seconds of the server and of the client processes per phase, and one core's cost to decode a
sample into a CHW uint8 tensor as decode="tensor" does (torchvision's decode_jpeg when installed, else PIL).
"""

import argparse
import os
import platform
import statistics
import threading
import time
import urllib.request

import torch
from torch.utils.data import DataLoader

import clipstream
from clipstream import ClipStreamDataset, serve

ZERO = bytes(512)
TICK = os.sysconf("SC_CLK_TCK")


class TarCounter:
    """Counts the `.state` members of a tar fed in chunks, reading headers only (member data are skipped)."""

    def __init__(self):
        self.header = bytearray()
        self.skip = 0
        self.samples = 0
        self.bytes = 0
        self.ended = False

    def feed(self, chunk):
        self.bytes += len(chunk)
        i, n = 0, len(chunk)
        while i < n and not self.ended:
            if self.skip:
                k = min(self.skip, n - i)
                self.skip -= k
                i += k
                continue
            k = min(512 - len(self.header), n - i)
            self.header += chunk[i : i + k]
            i += k
            if len(self.header) < 512:
                continue
            header, self.header = bytes(self.header), bytearray()
            if header == ZERO:
                self.ended = True
                break
            size = int(header[124:136].split(b"\0", 1)[0].strip() or b"0", 8)
            self.skip = (size + 511) // 512 * 512
            if header[:100].split(b"\0", 1)[0].endswith(b".state"):
                self.samples += 1


def cpu_seconds(pid):
    """utime + stime of a process, from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def client_cpu():
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def raw_pass(url, stream, partitions, epoch):
    """All partitions of one epoch, one reader thread each; returns (samples, seconds, bytes)."""
    counters = [TarCounter() for _ in range(partitions)]
    errors = []

    def read(p):
        try:
            with urllib.request.urlopen(f"{url}/streams/{stream}/{p}.tar?partitions={partitions}&epoch={epoch}", timeout=120) as r:
                announced = int(r.headers["X-Clipstream-Samples"])
                while True:
                    chunk = r.read(1 << 20)
                    if not chunk:
                        break
                    counters[p].feed(chunk)
            if counters[p].samples != announced or not counters[p].ended:
                errors.append(f"partition {p}: {counters[p].samples} samples of {announced} announced")
        except Exception as err:  # noqa: BLE001 - reported below
            errors.append(f"partition {p}: {err!r}")

    threads = [threading.Thread(target=read, args=(p,)) for p in range(partitions)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - start
    if errors:
        raise RuntimeError("; ".join(errors))
    return sum(c.samples for c in counters), seconds, sum(c.bytes for c in counters)


def loader_pass(url, stream, epoch, workers, batch_size, decode):
    """One epoch through a DataLoader; returns (samples, seconds, seconds to the first batch)."""
    dataset = ClipStreamDataset(url, stream=stream, decode=decode, epoch=epoch)
    collate = None if decode == "tensor" else clipstream.collate
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=workers, collate_fn=collate)
    samples, first = 0, None
    start = time.perf_counter()
    for batch in loader:
        if decode == "tensor":
            assert batch["image"].dtype == torch.uint8 and batch["image"].dim() == 4
        samples += len(batch["__key__"])
        if first is None:
            first = time.perf_counter() - start
    return samples, time.perf_counter() - start, first


def decode_cost(url, stream, encode_format, n=300):
    """One core's seconds per sample for decode="tensor"'s own work (the dataset's _decode), on the stream's images."""
    from clipstream.tar import group_samples, tar_members

    with urllib.request.urlopen(f"{url}/streams/{stream}/0.tar?partitions=1&epoch=0", timeout=120) as r:
        samples = []
        for sample in group_samples(tar_members(r.read)):
            samples.append(sample)
            if len(samples) >= n:
                break
    dataset = ClipStreamDataset(url, stream=stream, decode="tensor")
    start = time.perf_counter()
    for sample in samples:
        dataset._decode(sample)
    return (time.perf_counter() - start) / len(samples), statistics.mean(len(s[encode_format]) for s in samples)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--spec", required=True, help="the spec with the cache on")
    parser.add_argument("--spec-nocache", help="the same spec without a cache: the network-bound comparison")
    parser.add_argument("--urls", type=int, required=True)
    parser.add_argument("--encode-format", default="jpg", choices=["jpg", "npy"])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--network-rounds", type=int, default=1)
    args = parser.parse_args()
    P = args.workers
    cores = os.cpu_count()
    print(
        f"bench/torch on {cores} cores, python {platform.python_version()}, torch {torch.__version__} "
        f"(intra-op threads {torch.get_num_threads()}), clipstream from {os.path.dirname(clipstream.__file__)}"
    )

    # -- warm cache: the server reads its disk cache, so what differs between the two sides is the client ------------
    with serve(args.spec, name="bench") as server:
        url, stream, pid = server.url, "bench", server.process.pid
        info = ClipStreamDataset(url, stream=stream).info(P)
        total = info["total"]
        print(
            f"stream: {total} samples per epoch ({info['samples_per_partition']} per partition, P = {P}) from "
            f"{args.urls} urls of the bench server (256 px center_crop {args.encode_format}, ~2.5 % dead links back-filled)"
        )
        n, s, b = raw_pass(url, stream, P, 0)
        print(f"  warm-up, epoch 0 (downloads, fills the cache): {n} samples in {s:.1f} s ({n / s:.0f}/s), {b / n / 1024:.1f} KB/sample of tar")

        raws, loaders = [], []
        epoch = 1
        for r in range(args.rounds):
            c0, k0 = cpu_seconds(pid), client_cpu()
            n, s, _ = raw_pass(url, stream, P, epoch)
            raws.append((n / s, cpu_seconds(pid) - c0, client_cpu() - k0, n))
            epoch += 1
            c0, k0 = cpu_seconds(pid), client_cpu()
            m, t, first = loader_pass(url, stream, epoch, args.workers, args.batch_size, "tensor")
            loaders.append((m / t, cpu_seconds(pid) - c0, client_cpu() - k0, m))
            epoch += 1
            if m != total or n != total:
                raise RuntimeError(f"expected {total} samples, raw read {n}, the loader {m}")
            print(
                f"  round {r + 1}, warm cache: raw {n} samples in {s:.2f} s = {n / s:.0f}/s; "
                f"DataLoader(decode=tensor) {m} in {t:.2f} s = {m / t:.0f}/s (first batch after {first:.2f} s)"
            )
        c0, k0 = cpu_seconds(pid), client_cpu()
        m, t, first = loader_pass(url, stream, epoch, args.workers, args.batch_size, "raw")
        raw_loader = (m / t, cpu_seconds(pid) - c0, client_cpu() - k0, m)
        per_sample, image_bytes = decode_cost(url, stream, args.encode_format)

    # -- no cache: the server downloads every sample, as on a first epoch ---------------------------------------------
    network = []
    if args.spec_nocache and args.network_rounds > 0:
        with serve(args.spec_nocache, name="network") as server:
            for r in range(args.network_rounds):
                n, s, _ = raw_pass(server.url, "network", P, 2 * r)
                m, t, _ = loader_pass(server.url, "network", 2 * r + 1, args.workers, args.batch_size, "tensor")
                network.append((n / s, m / t))
                print(f"  round {r + 1}, no cache (every sample downloaded): raw {n / s:.0f}/s; DataLoader(decode=tensor) {m / t:.0f}/s")

    def ms(x, i):
        return 1000 * x[i] / x[3]

    best_raw = max(raws, key=lambda x: x[0])
    best_loader = max(loaders, key=lambda x: x[0])
    ceiling = cores / ((best_loader[1] + best_loader[2]) / best_loader[3])
    print("  CPU per sample (server process; client = this process + its workers), best round of each:")
    print(f"    raw readers                server {ms(best_raw, 1):.2f} ms, client {ms(best_raw, 2):.2f} ms")
    print(f"    DataLoader, decode=tensor  server {ms(best_loader, 1):.2f} ms, client {ms(best_loader, 2):.2f} ms "
          f"→ {cores} cores can do at most {ceiling:.0f}/s of this; the loader ran at {best_loader[0] / ceiling:.2f} of that")
    print(f"    DataLoader, decode=raw     server {ms(raw_loader, 1):.2f} ms, client {ms(raw_loader, 2):.2f} ms; "
          f"{raw_loader[0]:.0f} samples/s = {raw_loader[0] / best_raw[0]:.2f} of the raw readers")
    print(f"    decode=tensor's own work, one core: {1000 * per_sample:.2f} ms/sample "
          + (f"(header of a {image_bytes / 1024:.0f} KB 256 px .npy, copy → CHW uint8 tensor view)" if args.encode_format == "npy"
             else f"({'torchvision' if clipstream.dataset._jpeg_to_tensor() else 'PIL'} decode of a {image_bytes / 1024:.0f} KB 256 px JPEG → CHW uint8 tensor)"))
    if network:
        raw_n, loader_n = max(x[0] for x in network), max(x[1] for x in network)
        print(f"no cache: loader {loader_n:.0f}/s ÷ server {raw_n:.0f}/s = {loader_n / raw_n:.2f} (the server downloading sets the pace)")
    print(f"loader samples/s: {best_loader[0]:.0f} (DataLoader num_workers={args.workers}, decode=tensor, batch {args.batch_size}; warm cache; best of {args.rounds})")
    print(f"server samples/s: {best_raw[0]:.0f} (the same partitions' raw tar over HTTP, {P} readers, no decoding; warm cache; best of {args.rounds})")
    print(f"ratio loader/server: {best_loader[0] / best_raw[0]:.2f} (target ≥ 0.9)")


if __name__ == "__main__":
    main()
