"""`clipstream download|stream --output-folder s3://…` write shards that the webdataset package reads from the bucket.

The S3-compatible server is moto's server mode from the pinned venv of scripts/s3-env.sh, started here on
127.0.0.1 at a free port. webdataset reads the shards as its users read S3 (`pipe:aws s3 cp s3://… -`), here with
boto3 from that venv in place of the aws CLI.
"""

import json
import os
import socket
import subprocess
import time
import urllib.request

import pytest
from live import REPO, cli_command


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3():
    moto_server = subprocess.run(
        ["bash", str(REPO / "scripts" / "s3-env.sh")], check=True, capture_output=True, text=True, timeout=900
    ).stdout.strip()
    port = free_port()
    server = subprocess.Popen(
        [moto_server, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1)
            break
        except OSError:
            if time.monotonic() > deadline:
                server.kill()
                raise
            time.sleep(0.1)
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/shards", method="PUT"), timeout=5)
    env = dict(
        os.environ,
        AWS_ENDPOINT_URL_S3=endpoint,
        AWS_ACCESS_KEY_ID="test",
        AWS_SECRET_ACCESS_KEY="test",
        AWS_REGION="us-east-1",
    )
    yield moto_server, env
    server.terminate()
    server.wait(timeout=10)


def s3_cat(moto_server, key):
    """A webdataset url of an object of the bucket "shards": boto3 (moto's venv has it) in place of `aws s3 cp`."""
    python = os.path.join(os.path.dirname(moto_server), "python")
    code = f"import boto3, sys; boto3.client('s3').download_fileobj('shards', '{key}', sys.stdout.buffer)"
    return f'pipe:{python} -c "{code}"'


def test_webdataset_reads_download_shards_from_s3(world, tmp_path, s3):
    import webdataset as wds

    moto_server, env = s3
    os.environ.update(env)  # for the pipe: commands webdataset runs
    python = os.path.join(os.path.dirname(moto_server), "python")

    urls = tmp_path / "urls.csv"
    urls.write_text("url,caption\n" + "".join(f"{world.images_url}/images/{i}.jpg,image {i}\n" for i in range(30)))
    args = [
        "download",
        "--url-list",
        str(urls),
        "--input-format",
        "csv",
        "--caption-col",
        "caption",
        "--output-format",
        "webdataset",
        "--output-folder",
        "s3://shards/out",
        "--image-size",
        "48",
        "--number-sample-per-shard",
        "12",
        "--allow-private-networks",
        "--thread-count",
        "8",
    ]
    run = subprocess.run(cli_command() + args, capture_output=True, text=True, timeout=180, env=env)
    assert run.returncode == 0, run.stderr
    shards = [s3_cat(moto_server, f"out/{i:05d}.tar") for i in range(3)]
    samples = list(wds.WebDataset(shards, shardshuffle=False).decode("pil").to_tuple("__key__", "jpg", "txt", "json"))
    cat = [
        python,
        "-c",
        "import boto3, sys; sys.stdout.write(boto3.client('s3').get_object(Bucket='shards', "
        "Key=sys.argv[1])['Body'].read().decode())",
    ]
    stats = [json.loads(subprocess.check_output(cat + [f"out/{i:05d}_stats.json"], env=env)) for i in range(3)]
    assert len(samples) == sum(s["successes"] for s in stats) > 20  # a few of the world's images fail on purpose
    assert len({key for key, *_ in samples}) == len(samples)  # every key once
    for key, image, caption, meta in samples:
        assert image.size == (48, 48)
        assert meta["key"] == key and caption == meta["caption"] and meta["status"] == "success"


def test_webdataset_reads_stream_shards_from_s3(spec, s3):
    import webdataset as wds

    moto_server, env = s3
    os.environ.update(env)
    args = ["stream", str(spec), "--output-folder", "s3://shards/stream/p0", "--number-sample-per-shard", "25"]
    run = subprocess.run(cli_command() + args, capture_output=True, text=True, timeout=180, env=env)
    assert run.returncode == 0, run.stderr
    assert "done: 60/60 samples in 3 shard(s) in s3://shards/stream/p0" in run.stdout  # 30 red, 18 blue, 12 green
    shards = [s3_cat(moto_server, f"stream/p0/{i:05d}.tar") for i in range(3)]
    samples = list(wds.WebDataset(shards, shardshuffle=False).decode("pil").to_tuple("__key__", "jpg", "json", "txt"))
    cat = subprocess.run(
        [s3_cat(moto_server, "stream/p0/manifest.jsonl")[len("pipe:") :]], shell=True, capture_output=True, env=env
    )
    manifest = [json.loads(line) for line in cat.stdout.decode().splitlines()]
    assert [key for key, *_ in samples] == [m["key"] for m in manifest] == [f"e0p0s{n}" for n in range(60)]
    assert sorted(meta["query"] for _, _, meta, _ in samples) == ["blue"] * 18 + ["green"] * 12 + ["red"] * 30
    for key, image, meta, caption in samples:
        assert image.size == (32, 32) and meta["key"] == key and meta["caption"] == caption
