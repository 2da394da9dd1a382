"""faiss IVF-PQ on the vectors of bench/index (same embedding folder, same queries, same partitions and sub-vectors):
build time, then per nprobe (with and without an exact re-rank of 10 × k candidates, as clipstream's refine does)
query p50/p99 one query at a time and recall@10 against exact search."""
import glob
import sys
import time

import faiss
import numpy as np

emb, queries_npy, nlist, m = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
xb = np.concatenate([np.load(f).astype(np.float32) for f in sorted(glob.glob(f"{emb}/img_emb/*.npy"))])
xq = np.load(queries_npy).astype(np.float32)
k = 10

flat = faiss.IndexFlatIP(xb.shape[1])
flat.add(xb)
_, truth = flat.search(xq, k)

t = time.perf_counter()
quantizer = faiss.IndexFlatIP(xb.shape[1])
ivfpq = faiss.IndexIVFPQ(quantizer, xb.shape[1], nlist, m, 8, faiss.METRIC_INNER_PRODUCT)
rng = np.random.default_rng(0)
ivfpq.train(xb[rng.choice(len(xb), size=min(len(xb), 256 * nlist), replace=False)])
refined = faiss.IndexRefineFlat(ivfpq)  # adds to the IVF-PQ index and keeps the full vectors for re-ranking
refined.add(xb)
print(f"faiss {faiss.__version__}: IVF{nlist},PQ{m} built in {time.perf_counter() - t:.1f} s ({faiss.omp_get_max_threads()} threads)")


def measure(index, params):
    times, hits = [], 0
    for i in range(len(xq)):
        s = time.perf_counter()
        _, ids = index.search(xq[i : i + 1], k, params=params)
        times.append(1000 * (time.perf_counter() - s))
        hits += len(set(ids[0]) & set(truth[i]))
    times.sort()
    return times[len(times) // 2], times[int(len(times) * 0.99) - 1], hits / (len(xq) * k)


for nprobe in (10, 20, 50, 100):
    p50, p99, recall = measure(ivfpq, faiss.SearchParametersIVF(nprobe=nprobe))
    rp50, rp99, rrecall = measure(refined, faiss.IndexRefineSearchParameters(base_index_params=faiss.SearchParametersIVF(nprobe=nprobe), k_factor=10))
    print(f"faiss nprobe {nprobe:>3}: p50 {p50:.2f} ms, p99 {p99:.2f} ms, recall@10 {recall:.3f}; "
          f"+ exact re-rank of 100: p50 {rp50:.2f} ms, p99 {rp99:.2f} ms, recall@10 {rrecall:.3f}")
