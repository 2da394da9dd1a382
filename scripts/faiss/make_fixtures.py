"""Builds the faiss test fixtures into OUT (argv[1]) with faiss-cpu and autofaiss, and records faiss's own answers.

Run by scripts/faiss-fixtures.sh (from test/index/faiss/fixtures.ts) (the venv of scripts/faiss-env.sh). Small on
purpose (≤ 20 000 vectors of 64 dimensions, ~1 min on 2 cores). Writes:

  indexes/{name}.index           one index per type and list layout (see FIXTURES below)
  folders/{name}/                clip-retrieval-shaped folders: image.index (file, or folder of populated.index +
                                 merged_index.ivfdata), index-parts/, image.json, metadata/ (parquet or arrow)
  queries.npy                    float32 (Q, 64) queries, L2-normalised
  answers/{name}.json            faiss's answers: settings read back, top-k, range search, probes, override search
  manifest.json                  faiss / numpy / pyarrow versions, the SIMD level, the fixture list
  folders/dups/ + answers/dups_clip_back.json   planted near-duplicates, and what clip back's /knn-service answers
                                 with deduplicate (its connected-components dedup, recomputed here as clip back does)
  folders/large/                 1 000 000 vectors of 8 dimensions (IVF64,Flat, every list probed) and an Arrow
                                 metadata file: a plan of a million candidates, for the bounded-memory test
"""
import json
import os
import shutil
import sys

import numpy as np

import faiss
import pyarrow as pa
import pyarrow.parquet as pq
from faiss.contrib.ondisk import merge_ondisk

OUT = sys.argv[1]
D = 64
N = 12_000
RNG = np.random.default_rng(1234)
faiss.omp_set_num_threads(2)


def normalize(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def clustered(n, centers):
    """Points around random centres (LAION-like: clumpy, normalised), so lists are uneven and neighbours close."""
    which = RNG.integers(0, len(centers), size=n)
    return normalize(centers[which] + 0.35 * RNG.standard_normal((n, D)).astype(np.float32))


CENTERS = normalize(RNG.standard_normal((50, D)).astype(np.float32))
XB = clustered(N, CENTERS)
XQ = np.concatenate([clustered(12, CENTERS), normalize(XB[:8] + 0.05 * RNG.standard_normal((8, D)).astype(np.float32))])
IP, L2 = faiss.METRIC_INNER_PRODUCT, faiss.METRIC_L2


def path(*parts):
    p = os.path.join(OUT, *parts)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    return p


def radius_for(index):
    """A radius that keeps ~200 results for the first query (so range search returns many, not all)."""
    dist, _ = index.search(XQ[:1], 200)
    return float(dist[0][-1])


def try_ivf(index):
    try:
        return faiss.extract_index_ivf(index)
    except RuntimeError:
        return None


def settings(index):
    s = {}
    ivf = try_ivf(index)
    if ivf is not None:
        s["nprobe"] = ivf.nprobe
        s["nlist"] = ivf.nlist
        q = faiss.downcast_index(ivf.quantizer)
        if isinstance(q, faiss.IndexHNSW):
            s["efSearch"] = q.hnsw.efSearch
    inner = faiss.downcast_index(index)
    if isinstance(inner, faiss.IndexHNSW):
        s["efSearch"] = inner.hnsw.efSearch
    return s


def write(name, index):
    faiss.write_index(index, path("indexes", f"{name}.index"))


def build_autofaiss(folder, key, params, metric="ip"):
    """An index built the way clip-retrieval builds it (autofaiss, explicit key and params), with its infos JSON."""
    from autofaiss import build_index

    os.makedirs(folder, exist_ok=True)
    build_index(
        embeddings=XB, index_path=os.path.join(folder, "image.index"), index_infos_path=os.path.join(folder, "image.json"),
        index_key=key, index_param=params, metric_type=metric, max_index_memory_usage="1G", current_memory_available="4G",
        nb_cores=2, verbose=40,
    )


def build_parts(folder, key, params, parts=3):
    """autofaiss's distributed shape: a trained index, parts holding global ids (add_with_ids), merged on disk."""
    m, d_out, nlist = 16, 64, 256  # the key's numbers
    q = faiss.IndexHNSWFlat(d_out, 32, IP)  # as autofaiss builds IVFc_HNSW32 for IP
    ivfpq = faiss.IndexIVFPQ(q, d_out, nlist, m, 8, IP)
    index = faiss.IndexPreTransform(faiss.OPQMatrix(D, m, d_out), ivfpq)
    index.train(XB)
    faiss.ParameterSpace().set_index_parameters(index, params)
    trained = path(folder, "trained.index")
    faiss.write_index(index, trained)
    bounds = np.linspace(0, N, parts + 1).astype(int)
    names = []
    for p in range(parts):
        part = faiss.read_index(trained)
        part.add_with_ids(XB[bounds[p] : bounds[p + 1]], np.arange(bounds[p], bounds[p + 1], dtype=np.int64))
        names.append(path(folder, "index-parts", f"{p:02d}.index"))
        faiss.write_index(part, names[-1])
    # Merged as clip-retrieval's index_combiner does, in another folder first: the stored ivfdata path then names
    # a place that no longer exists, and readers must use its basename next to populated.index.
    staging = path(folder, "staging", "x")
    empty = faiss.read_index(names[0], faiss.IO_FLAG_MMAP)
    empty.ntotal = 0
    faiss.extract_index_ivf(empty).ntotal = 0
    merge_ondisk(empty, names, os.path.join(os.path.dirname(staging), "merged_index.ivfdata"))
    faiss.write_index(empty, os.path.join(os.path.dirname(staging), "populated.index"))
    os.makedirs(path(folder, "image.index", "x").rsplit("/", 1)[0], exist_ok=True)
    for f in ("populated.index", "merged_index.ivfdata"):
        shutil.move(os.path.join(os.path.dirname(staging), f), path(folder, "image.index", f))
    shutil.rmtree(os.path.dirname(staging))
    os.remove(trained)
    json.dump({"index_key": key, "index_param": params, "nb vectors": N}, open(path(folder, "image.json"), "w"))


def record_ondisk(name, folder):
    index = faiss.read_index(path(folder, "image.index", "populated.index"), faiss.IO_FLAG_ONDISK_SAME_DIR)
    record_from(name, index, IP, override="nprobe=32,efSearch=64")


def record_from(name, index, metric, override=None):
    out = {"metric": "ip" if metric == IP else "l2", "d": index.d, "ntotal": index.ntotal, "settings": settings(index)}
    for k in (10, 300):
        dist, ids = index.search(XQ, k)
        out[f"top{k}"] = {"ids": ids.tolist(), "distances": dist.tolist()}
    radius = radius_for(index)
    lims, dist, ids = index.range_search(XQ, radius)
    out["range"] = {"radius": radius, "lims": lims.tolist(), "ids": ids.tolist(), "distances": dist.tolist()}
    ivf = try_ivf(index)
    if ivf is not None:
        _, probes = ivf.quantizer.search(np.ascontiguousarray(chain(index, XQ)), ivf.nprobe)
        out["probes"] = probes.tolist()
    if override:
        faiss.ParameterSpace().set_index_parameters(index, override)
        dist, ids = index.search(XQ, 10)
        out["override"] = {"params": override, "settings": settings(index), "ids": ids.tolist(), "distances": dist.tolist()}
    out["search_and_reconstruct"] = search_and_reconstruct(index)
    json.dump(out, open(path("answers", f"{name}.json"), "w"))


def chain(index, x):
    if not isinstance(index, faiss.IndexPreTransform):
        return x
    for i in range(index.chain.size()):
        x = faiss.downcast_VectorTransform(index.chain.at(i)).apply(x)
    return x


def search_and_reconstruct(index):
    try:
        dist, ids, recons = index.search_and_reconstruct(XQ[:2], 5)
        return {"ids": ids.tolist(), "vectors": recons.tolist()}
    except RuntimeError as e:
        return {"error": str(e)}


def metadata_rows(start, end):
    rows = np.arange(start, end)
    return {
        "url": [f"https://img.example/{i}.jpg" for i in rows],
        "caption": [f"caption of row {i}" for i in rows],
        "row": rows.astype(np.int64),
        "width": (rows % 997 + 1).astype(np.int32),
    }


def write_parquet_metadata(folder, bounds, row_group_size=700):
    for p in range(len(bounds) - 1):
        table = pa.table(metadata_rows(bounds[p], bounds[p + 1]))
        pq.write_table(table, path(folder, "metadata", f"metadata_{p}.parquet"), row_group_size=row_group_size)


def write_arrow_metadata(folder, splits):
    """clip back's use_arrow layout: IPC *file* format, several record batches per file, files named to sort right."""
    for name, (start, end) in splits.items():
        table = pa.table(metadata_rows(start, end))
        with pa.OSFile(path(folder, "metadata", name), "wb") as sink:
            with pa.ipc.new_file(sink, table.schema) as writer:
                for batch in table.to_batches(max_chunksize=1500):
                    writer.write_batch(batch)


def clip_back_dedup(index, xq, k):
    """clip back's knn_search with deduplicate: search_and_reconstruct, cut at the first -1, reconstructions made unit
    length, an IndexFlatIP range search at 0.94 over them, connected components, the first member of each kept."""
    out = []
    for q in xq:
        dist, ids, recons = index.search_and_reconstruct(q[None, :], k)
        n = int(np.argmax(ids[0] == -1)) if (ids[0] == -1).any() else k
        ids, dist, emb = ids[0][:n], dist[0][:n], recons[0][:n]
        emb = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-30)
        flat = faiss.IndexFlatIP(emb.shape[1])
        flat.add(emb)
        lims, _, nbr = flat.range_search(emb, 0.94)
        neighbours = {i: [int(j) for j in nbr[lims[i] : lims[i + 1]]] for i in range(n)}
        seen, dropped = set(), set()
        for start in neighbours:
            if start in seen:
                continue
            group, todo = [], {start}
            while todo:
                node = todo.pop()
                seen.add(node)
                todo |= set(neighbours[node]) - seen
                group.append(node)
            dropped |= set(group[1:])
        keep = [i for i in range(n) if i not in dropped]
        out.append({"all": ids.tolist(), "ids": ids[keep].tolist(), "similarities": dist[keep].tolist()})
    return out


def build_dups():
    """Near-duplicates as LAION has them (re-uploads, crops): 200 pairs (cosine ~0.99) and 100 chains of three whose
    neighbours are at cosine 0.965 and whose ends are at 0.86, among 400 singles, in a shuffled order; an exact
    IVF-Flat index (reconstructions are the vectors), parquet metadata, and clip back's deduplicated answers."""
    rng = np.random.default_rng(77)
    unit = lambda x: (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)
    singles = unit(rng.standard_normal((400, D)))
    first = unit(rng.standard_normal((200, D)))
    pairs = np.concatenate([first, unit(first + 0.02 * rng.standard_normal((200, D)))])
    u = unit(rng.standard_normal((100, D)))
    w = unit(rng.standard_normal((100, D)))
    w = unit(w - (w * u).sum(1, keepdims=True) * u)
    theta = np.arccos(0.965)
    chains = np.concatenate([unit(np.cos(k * theta) * u + np.sin(k * theta) * w) for k in range(3)])
    xb = np.concatenate([singles, pairs, chains])[rng.permutation(1100)]
    folder = os.path.join("folders", "dups")
    index = faiss.index_factory(D, "IVF16,Flat", IP)
    index.train(xb)
    index.add(xb)
    faiss.ParameterSpace().set_index_parameters(index, "nprobe=16")
    faiss.write_index(index, path(folder, "image.index"))
    write_parquet_metadata(folder, [0, 1100])
    # Queries at a chain's end (clip back drops the far end with the middle; a greedy dedup would keep it), at a
    # pair, at a single.
    xq = unit(np.stack([chains[0], chains[201], pairs[0], singles[0]]) + 0.001 * rng.standard_normal((4, D)))
    np.save(path(folder, "queries.npy"), xq)
    answer = {"k": 40, "queries": clip_back_dedup(faiss.read_index(path(folder, "image.index")), xq, 40)}
    json.dump(answer, open(path("answers", "dups_clip_back.json"), "w"))


def build_large():
    """A million small vectors, all within a wide threshold of the query (1, 0, …, 0): a plan of 1 M candidates."""
    rng = np.random.default_rng(5)
    n, d = 1_000_000, 8
    x = rng.standard_normal((n, d)).astype(np.float32)
    x[:, 0] = np.abs(x[:, 0]) + 0.5  # every row on the query's side
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    folder = os.path.join("folders", "large")
    index = faiss.index_factory(d, "IVF64,Flat", IP)
    index.train(x[:20_000])
    index.add(x)
    faiss.ParameterSpace().set_index_parameters(index, "nprobe=64")
    faiss.write_index(index, path(folder, "image.index"))
    table = pa.table({"url": [f"https://img.example/l/{i}.jpg" for i in range(n)]})
    with pa.OSFile(path(folder, "metadata", "0.arrow"), "wb") as sink:
        with pa.ipc.new_file(sink, table.schema) as writer:
            for batch in table.to_batches(max_chunksize=65_536):
                writer.write_batch(batch)


def main():
    os.makedirs(OUT, exist_ok=True)
    np.save(path("queries.npy"), XQ)
    fixtures = []

    def single(name, key, metric, **kw):
        index = faiss.index_factory(D, key, metric)
        n = kw.get("n", N)
        xb = XB[:n]
        if not index.is_trained:
            index.train(xb if n >= 5000 else XB)
        ids = kw.get("ids")
        index.add(xb) if ids is None else index.add_with_ids(xb, ids)
        if kw.get("params"):
            faiss.ParameterSpace().set_index_parameters(index, kw["params"])
        write(name, index)
        record_from(name, faiss.read_index(path("indexes", f"{name}.index")), metric, override=kw.get("override"))
        fixtures.append(name)

    single("flat_ip", "Flat", IP, n=5000)
    single("flat_l2", "Flat", L2, n=5000)
    single("idmap_flat_ip", "IDMap,Flat", IP, n=3000, ids=np.arange(3000, dtype=np.int64) * 7 + 5)
    single("hnsw_ip", "HNSW32", IP, n=8000, params="efSearch=24", override="efSearch=64")
    single("hnsw_l2", "HNSW16", L2, n=8000, params="efSearch=20")
    big_ids = RNG.permutation(N).astype(np.int64) + (1 << 33)
    single("ivfflat_ip", "IVF64,Flat", IP, params="nprobe=6", ids=big_ids, override="nprobe=20")
    single("ivfflat_l2", "IVF64,Flat", L2, params="nprobe=5")
    single("ivfflat_sparse_ip", "IVF256,Flat", IP, n=300, params="nprobe=8")
    single("ivfpq_l2", "IVF128,PQ16x8np", L2, params="nprobe=10", override="nprobe=40")
    single("ivfpq_ip", "IVF128,PQ16x8np", IP, params="nprobe=10")
    single("opq_ivfpq_ip", "OPQ16_64,IVF128,PQ16x8np", IP, params="nprobe=12")
    single("opq_ivfhnswpq_l2", "OPQ8_64,IVF256_HNSW32,PQ8x8np", L2, params="nprobe=16,efSearch=32")

    # clip-retrieval-shaped folders (autofaiss for the single-file ones, the distributed shape for the parts).
    build_autofaiss(path("folders", "autofaiss", "x").rsplit("/", 1)[0], "OPQ16_64,IVF256_HNSW32,PQ16x8", "nprobe=16,efSearch=32,ht=2048")
    write_parquet_metadata(os.path.join("folders", "autofaiss"), [0, 5000, 9000, N])
    record_from("autofaiss", faiss.read_index(path("folders", "autofaiss", "image.index")), IP, override="nprobe=48,efSearch=96")
    fixtures.append("autofaiss")

    build_autofaiss(path("folders", "wide", "x").rsplit("/", 1)[0], "OPQ16_128,IVF256_HNSW32,PQ16x8", "nprobe=16,efSearch=32,ht=2048")
    record_from("wide", faiss.read_index(path("folders", "wide", "image.index")), IP)
    fixtures.append("wide")

    build_parts(os.path.join("folders", "ondisk"), "OPQ16_64,IVF256_HNSW32,PQ16x8", "nprobe=16,efSearch=32,ht=2048")
    write_arrow_metadata(os.path.join("folders", "ondisk"), {"0_en.arrow": (0, 7000), "1_multi.arrow": (7000, N)})
    record_ondisk("ondisk", os.path.join("folders", "ondisk"))
    fixtures.append("ondisk")

    # The parts folder alone (searched as one index), with parquet metadata one row short: misaligned.
    shutil.copytree(path("folders", "ondisk", "index-parts"), path("folders", "misaligned", "index-parts"))
    write_parquet_metadata(os.path.join("folders", "misaligned"), [0, 6000, N - 1])

    build_dups()
    build_large()

    manifest = {
        "faiss": faiss.__version__, "numpy": np.__version__, "pyarrow": pa.__version__,
        "simd": faiss.get_compile_options(), "d": D, "n": N, "queries": len(XQ), "fixtures": fixtures,
    }
    json.dump(manifest, open(path("manifest.json"), "w"), indent=1)


if __name__ == "__main__":
    main()
