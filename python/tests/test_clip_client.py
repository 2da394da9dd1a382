"""clip-retrieval's own ClipClient (from PyPI, unmodified, with its defaults) against `clipstream serve`: what its
users run against clip back must work against us. clip-retrieval is installed without its dependencies (torch,
faiss, flask…); its `clip_client` module needs only `requests`, so it is loaded from its file."""

import functools
import http.server
import importlib.metadata
import importlib.util
import json
import re
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest
import requests
from live import cli_command


def load_clip_client():
    files = importlib.metadata.files("clip-retrieval") or []
    path = next(f for f in files if str(f).replace("\\", "/").endswith("clip_retrieval/clip_client.py"))
    spec = importlib.util.spec_from_file_location("clip_client", path.locate())
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


clip_client = load_clip_client()
ClipClient, Modality = clip_client.ClipClient, clip_client.Modality


def start_serve(args):
    """`clipstream serve ARGS --port 0`; yields (base url, log lines) once it listens, stops it after."""
    process = subprocess.Popen(
        cli_command() + ["serve", *args, "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = []
    ready = threading.Event()
    url = {}

    def drain():
        for line in process.stdout:
            lines.append(line.rstrip())
            match = re.search(r"listening on (http://\S+?)(?: |$)", line)
            if match:
                url["base"] = match.group(1)
                ready.set()

    threading.Thread(target=drain, daemon=True).start()
    assert ready.wait(60), "\n".join(lines)
    yield url["base"], lines
    process.terminate()
    process.wait(10)


@pytest.fixture(scope="module")
def back(world):
    """`clipstream serve --index demo=… --model …`, as a clip back user would start it."""
    yield from start_serve(
        ["--index", f"demo={world.dir / 'index'}", "--model", str(world.dir / "model"), "--allow-private-networks"]
    )


def colours(results):
    return [r["colour"] for r in results]


def test_text_query_with_clip_clients_defaults(back):
    base, lines = back
    client = ClipClient(url=f"{base}/knn-service", indice_name="demo")  # safety, violence, aesthetic 9, dedup: on
    results = client.query(text="red")
    assert 0 < len(results) <= 40
    assert set(colours(results)) == {"red"}
    sims = [r["similarity"] for r in results]
    assert sims == sorted(sims, reverse=True)
    assert all(isinstance(r["id"], int) and r["url"].startswith("http") and r["caption"] for r in results)
    # what the server skipped is said once in its log
    assert sum("use_safety_model asked for and skipped" in line for line in lines) == 1


def test_num_images_and_deduplicate(back):
    base, _ = back
    many = ClipClient(url=f"{base}/knn-service", indice_name="demo", num_images=25, deduplicate=False).query(
        text="blue"
    )
    assert len(many) == 25 and set(colours(many)) == {"blue"}
    deduplicated = ClipClient(url=f"{base}/knn-service", indice_name="demo", num_images=25).query(text="blue")
    # demo images of one colour are near-duplicates of each other in color-CLIP's space: dedup keeps few
    assert 0 < len(deduplicated) < len(many)


def test_image_query_by_path_and_by_url(back, world, tmp_path):
    base, _ = back
    client = ClipClient(url=f"{base}/knn-service", indice_name="demo", num_images=5, deduplicate=False)
    url = f"{world.images_url}/images/0.jpg"
    by_url = client.query(image=url)  # sent as image_url: the server downloads it
    path = tmp_path / "query.jpg"
    path.write_bytes(requests.get(url, timeout=10).content)
    by_path = client.query(image=str(path))  # sent as base64 image
    assert len(by_path) == 5 and len(set(colours(by_path))) == 1
    assert colours(by_path) == colours(by_url)


def test_embedding_query(back, world):
    base, _ = back
    rows = np.load(world.dir / "embeddings" / "img_emb" / "img_emb_0.npy").astype(np.float32)
    client = ClipClient(url=f"{base}/knn-service", indice_name="demo", num_images=3, deduplicate=False)
    results = client.query(embedding_input=rows[7].tolist())
    assert len(results) == 3
    for r in results:  # the similarity clip back gives: the inner product with the row's stored embedding
        assert r["similarity"] == pytest.approx(float(rows[r["id"]] @ rows[7]), abs=2e-3)
    assert results[0]["similarity"] == pytest.approx(float(rows[7] @ rows[7]), abs=2e-3)


def test_metadata_of_ids_as_clip_front_pages_them(back):
    base, _ = back
    ids = [
        r["id"]
        for r in ClipClient(url=f"{base}/knn-service", indice_name="demo", num_images=4, deduplicate=False).query(
            text="green"
        )
    ]
    answer = requests.post(f"{base}/metadata", data=f'{{"indice_name": "demo", "ids": {ids}}}', timeout=10).json()
    assert [a["id"] for a in answer] == ids
    assert all(a["metadata"]["colour"] == "green" for a in answer)


def test_a_bad_request_is_a_json_error_not_a_decode_error(back):
    base, _ = back
    reply = requests.post(
        f"{base}/knn-service", data='{"indice_name": "nope", "num_images": 1, "text": "red"}', timeout=10
    )
    assert reply.status_code == 400
    assert "unknown indice_name" in reply.json()["error"]


@pytest.fixture(scope="module")
def faiss_fixtures():
    """The faiss test fixtures (built once with faiss-cpu and autofaiss by scripts/faiss-fixtures.sh, cached)."""
    from live import REPO

    out = subprocess.run(
        ["bash", str(REPO / "scripts" / "faiss-fixtures.sh")], capture_output=True, text=True, timeout=900, check=True
    )
    return Path(out.stdout.strip().splitlines()[-1])


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """A static file server that answers `Range: bytes=a-b` with 206, as a mirror of LAION's folders does."""

    def send_head(self):
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        path = Path(self.translate_path(self.path))
        if not match or not path.is_file():
            return super().send_head()
        size = path.stat().st_size
        start, end = int(match.group(1)), min(int(match.group(2) or size - 1), size - 1)
        if start >= size:
            self.send_error(416)
            return None
        f = path.open("rb")
        f.seek(start)
        self.send_response(206)
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(end - start + 1))
        self.end_headers()
        self.wfile.write(f.read(end - start + 1))
        f.close()
        return None

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def folders_over_http(faiss_fixtures):
    """The fixture folders behind a local HTTP server that answers range requests; yields its base URL."""
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(RangeHandler, directory=str(faiss_fixtures / "folders"))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def faiss_back(faiss_fixtures, folders_over_http, tmp_path_factory):
    """`clipstream serve --indices-paths` with clip back's keys, over faiss folders: IVF-Flat with planted
    near-duplicates; autofaiss's LAION-shaped OPQ16_64,IVF256_HNSW32,PQ16x8 with parquet metadata, as a folder and
    behind an HTTP URL."""
    indices = tmp_path_factory.mktemp("indices") / "indices_paths.json"
    autofaiss = {"columns_to_return": ["url", "caption"], "use_arrow": False, "enable_faiss_memory_mapping": True}
    indices.write_text(
        json.dumps(
            {
                "laion": {
                    "indice_folder": str(faiss_fixtures / "folders" / "dups"),
                    "columns_to_return": ["url", "caption"],
                    "enable_faiss_memory_mapping": True,
                    "clip_model": "ViT-L/14",
                    "provide_safety_model": True,
                },
                "auto": {"indice_folder": str(faiss_fixtures / "folders" / "autofaiss"), **autofaiss},
                "auto_http": {"indice_folder": f"{folders_over_http}/autofaiss", **autofaiss},
            }
        )
    )
    yield from start_serve(["--indices-paths", str(indices)])


def test_clip_client_over_a_faiss_index_answers_what_clip_back_answers(faiss_back, faiss_fixtures):
    base, lines = faiss_back
    queries = np.load(faiss_fixtures / "folders" / "dups" / "queries.npy")
    clip_back = json.loads((faiss_fixtures / "answers" / "dups_clip_back.json").read_text())
    k = clip_back["k"]
    for query, want in zip(queries, clip_back["queries"]):
        # ClipClient's defaults: deduplicate, safety model, violence detector, aesthetic score 9
        results = ClipClient(url=f"{base}/knn-service", indice_name="laion", num_images=k).query(
            embedding_input=query.tolist()
        )
        assert [r["id"] for r in results] == want["ids"]
        assert [r["similarity"] for r in results] == pytest.approx(want["similarities"], abs=1e-5)
        assert all(set(r) == {"id", "similarity", "url", "caption"} for r in results)  # columns_to_return
        plain = ClipClient(url=f"{base}/knn-service", indice_name="laion", num_images=k, deduplicate=False)
        assert [r["id"] for r in plain.query(embedding_input=query.tolist())] == want["all"]
    # clip back's keys that mean nothing here are accepted and said once, at start
    assert sum("clip_model (laion) accepted without effect" in line for line in lines) == 1
    assert sum("provide_safety_model (laion) accepted without effect" in line for line in lines) == 1


@pytest.mark.parametrize("name", ["auto", "auto_http"])
def test_clip_client_over_an_autofaiss_folder_and_its_url(faiss_back, faiss_fixtures, name):
    """faiss's own top-k (nprobe and efSearch from autofaiss's image.json) through ClipClient, with the metadata."""
    base, _ = faiss_back
    queries = np.load(faiss_fixtures / "queries.npy")
    faiss = json.loads((faiss_fixtures / "answers" / "autofaiss.json").read_text())
    assert name in requests.get(f"{base}/indices-list", timeout=10).json()
    for q in range(3):
        client = ClipClient(url=f"{base}/knn-service", indice_name=name, num_images=10, deduplicate=False)
        results = client.query(embedding_input=queries[q].tolist())
        assert [r["id"] for r in results] == faiss["top10"]["ids"][q]
        assert [r["similarity"] for r in results] == pytest.approx(faiss["top10"]["distances"][q], abs=1e-4)
        assert all(r["url"] == f"https://img.example/{r['id']}.jpg" for r in results)
        assert all(
            r["caption"] == f"caption of row {r['id']}" and set(r) == {"id", "similarity", "url", "caption"}
            for r in results
        )
        deduplicated = ClipClient(url=f"{base}/knn-service", indice_name=name, num_images=10).query(
            embedding_input=queries[q].tolist()
        )
        assert deduplicated[0]["id"] == results[0]["id"]
        assert {r["id"] for r in deduplicated} <= set(faiss["top10"]["ids"][q])
