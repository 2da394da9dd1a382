"""bench/faiss: builds an autofaiss OPQ/IVF-HNSW/PQ index of N × D clustered unit vectors into OUT (once) and times
faiss-cpu on it, one query at a time on one thread: top-10, and a range search whose radius keeps ~RANGE results.

  python build.py OUT N D KEY PARAM QUERIES RANGE
Writes OUT/image.index, OUT/image.json (autofaiss), OUT/queries.npy, OUT/faiss.json (per-query times, radii, ids).
"""
import json
import os
import sys
import time

import numpy as np

import faiss

out, n, d, key, param, nq, want = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5], int(sys.argv[6]), int(sys.argv[7])
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(7)
centres = rng.standard_normal((1024, d)).astype(np.float32)
basis = rng.standard_normal((16, d)).astype(np.float32)


def vectors(count):
    """centre + a shared 16-dimensional latent + a little noise, normalised (neighbours near for a reason, as CLIP's)."""
    x = centres[rng.integers(0, len(centres), count)] + 0.3 * rng.standard_normal((count, 16)).astype(np.float32) @ basis
    x += 0.05 * rng.standard_normal((count, d)).astype(np.float32)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


if not os.path.exists(os.path.join(out, "image.index")):
    emb = os.path.join(out, "emb")
    os.makedirs(emb, exist_ok=True)
    for part, start in enumerate(range(0, n, 500_000)):
        np.save(os.path.join(emb, f"img_emb_{part:04d}.npy"), vectors(min(500_000, n - start)))
    from autofaiss import build_index

    t = time.perf_counter()
    build_index(embeddings=emb, index_path=os.path.join(out, "image.index"), index_infos_path=os.path.join(out, "image.json"),
                index_key=key, index_param=param, metric_type="ip", max_index_memory_usage="16G", current_memory_available="20G",
                nb_cores=2, verbose=40)
    print(f"built {key} on {n} × {d} in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    for f in os.listdir(emb):
        os.remove(os.path.join(emb, f))
    os.rmdir(emb)
    np.save(os.path.join(out, "queries.npy"), vectors(nq))

faiss.omp_set_num_threads(1)
t = time.perf_counter()
index = faiss.read_index(os.path.join(out, "image.index"))
open_s = time.perf_counter() - t
xq = np.load(os.path.join(out, "queries.npy"))
top, top_ids, radii, rng_times, rng_counts = [], [], [], [], []
for i in range(len(xq)):
    q = xq[i : i + 1]
    t = time.perf_counter()
    _, ids = index.search(q, 10)
    top.append(1000 * (time.perf_counter() - t))
    top_ids.append(ids[0].tolist())
    dist, _ = index.search(q, want)
    radius = float(dist[0][-1])
    t = time.perf_counter()
    lims, _, _ = index.range_search(q, radius)
    rng_times.append(1000 * (time.perf_counter() - t))
    radii.append(radius)
    rng_counts.append(int(lims[1]))
json.dump({"faiss": faiss.__version__, "open_s": open_s, "top10_ms": top, "top10_ids": top_ids, "radii": radii,
           "range_ms": rng_times, "range_counts": rng_counts}, open(os.path.join(out, "faiss.json"), "w"))
