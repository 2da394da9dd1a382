"""clip-retrieval's own ClipClient (from PyPI, unmodified, with its defaults) against `clipstream serve`: what its
users run against clip back must work against us. clip-retrieval is installed without its dependencies (torch,
faiss, flask…); its `clip_client` module needs only `requests`, so it is loaded from its file."""

import importlib.metadata
import importlib.util
import re
import subprocess
import threading

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


@pytest.fixture(scope="module")
def back(world):
    """`clipstream serve --index demo=… --model …`, as a clip back user would start it."""
    process = subprocess.Popen(
        cli_command()
        + [
            "serve",
            "--index",
            f"demo={world.dir / 'index'}",
            "--model",
            str(world.dir / "model"),
            "--port",
            "0",
            "--allow-private-networks",
        ],
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
