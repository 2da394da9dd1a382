"""Builds the large-plan bench's index once: OUT (argv[1]) gets a LAION-shaped folder of COUNT (argv[2]) vectors of
DIM (argv[3]) dimensions — `image.index` (IVF{NLIST},Flat, every list probed: a wide threshold keeps every row) and
`metadata/0.arrow` (url http://127.0.0.1:PORT/img/{i}.jpg on the bench/stream image server at PORT, argv[4], and a
caption), then `ready.json`. Vectors are built and added in chunks, so memory stays ~1 GB whatever COUNT.
Run by bench/plan/run.mjs in the venv of scripts/faiss-env.sh."""
import json
import os
import sys

import faiss
import numpy as np
import pyarrow as pa

out, count, dim, port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
nlist = 1024
chunk = 1_000_000
os.makedirs(os.path.join(out, "metadata"), exist_ok=True)
rng = np.random.default_rng(11)


def vectors(n):
    """Unit vectors all on e0's side (cosine with e0 in [0.3, 1]): the query (1, 0, …) at -1 keeps every one."""
    x = rng.standard_normal((n, dim)).astype(np.float32)
    x[:, 0] = np.abs(x[:, 0]) + 1.0
    return x / np.linalg.norm(x, axis=1, keepdims=True)


faiss.omp_set_num_threads(2)
quantizer = faiss.IndexFlatIP(dim)
index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
index.train(vectors(min(count, 100_000)))
for start in range(0, count, chunk):
    index.add(vectors(min(chunk, count - start)))
index.nprobe = nlist
faiss.write_index(index, os.path.join(out, "image.index"))

schema = pa.schema([("url", pa.string()), ("caption", pa.string())])
with pa.OSFile(os.path.join(out, "metadata", "0.arrow"), "wb") as sink:
    with pa.ipc.new_file(sink, schema) as writer:
        for start in range(0, count, 65_536):
            ids = range(start, min(count, start + 65_536))
            writer.write_batch(
                pa.record_batch(
                    [pa.array([f"http://127.0.0.1:{port}/img/{i}.jpg" for i in ids]), pa.array([f"image {i}" for i in ids])],
                    schema=schema,
                )
            )
json.dump({"count": count, "dim": dim, "port": port, "nlist": nlist, "faiss": faiss.__version__},
          open(os.path.join(out, "ready.json"), "w"))
print(f"built {count} × {dim} IVF{nlist},Flat + Arrow metadata in {out}")
