"""`clipstream download` against img2dataset 1.47 itself: every parameter of its `download()` is a flag the CLI
accepts (so a new img2dataset option fails here), and the `exif` field is what img2dataset's exifread gives.

scripts/test-python.sh installs img2dataset 1.47.0 and exifread-nocycle 3.0.1 (the version img2dataset pins)
without their dependencies: img2dataset is only read (its main.py, with ast), never imported.
"""

import ast
import functools
import http.server
import importlib.metadata
import io
import json
import subprocess
import threading
from pathlib import Path

import pytest
from live import cli_command
from PIL import Image
from PIL.TiffImagePlugin import IFDRational

IMG2DATASET_VERSION = "1.47.0"
REQUIRED = object()


@functools.cache
def img2dataset_parameters():
    """(name, default) of every parameter of img2dataset's download(), read from the installed package's source."""
    dist = importlib.metadata.distribution("img2dataset")
    assert dist.version == IMG2DATASET_VERSION, f"scripts/test-python.sh pins img2dataset {IMG2DATASET_VERSION}"
    source = Path(dist.locate_file("img2dataset/main.py")).read_text()
    download = next(n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.FunctionDef) and n.name == "download")
    args = download.args.args
    defaults = [REQUIRED] * (len(args) - len(download.args.defaults)) + list(download.args.defaults)
    return [(arg.arg, default_value(default)) for arg, default in zip(args, defaults)]


def default_value(node):
    if node is REQUIRED:
        return REQUIRED
    if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "float":  # float("inf")
        return float(ast.literal_eval(node.args[0]))
    return ast.literal_eval(node)


def run_cli(*args, timeout=120):
    return subprocess.run(cli_command() + list(args), capture_output=True, text=True, timeout=timeout, check=False)


class StaticServer:
    """A folder over HTTP on 127.0.0.1 (a random port), quiet."""

    def __init__(self, folder):
        class Quiet(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *a, **kw):
                super().__init__(*a, directory=str(folder), **kw)

            def log_message(self, *_):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def served(tmp_path):
    folder = tmp_path / "www"
    folder.mkdir()
    server = StaticServer(folder)
    yield folder, server.url
    server.close()


def test_the_installed_package_has_the_known_options():
    names = [name for name, _ in img2dataset_parameters()]
    assert names[0] == "url_list" and dict(img2dataset_parameters())["url_list"] is REQUIRED
    assert {"bbox_col", "extract_exif", "distributor", "max_shard_retry", "disallowed_header_directives"} <= set(names)


def test_every_img2dataset_option_is_a_download_flag():
    help_text = run_cli("download", "--help").stdout
    flags = {word.rstrip(",") for word in help_text.split() if word.startswith("--")}
    missing = [name for name, _ in img2dataset_parameters() if "--" + name.replace("_", "-") not in flags]
    assert missing == [], f"img2dataset options `clipstream download` does not take: {missing}"


def flag_value(value):
    if isinstance(value, bool):
        return str(value)  # True / False, as fire takes them
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


def test_runs_with_every_img2dataset_default_spelled_in_snake_case(tmp_path, served):
    folder, url = served
    Image.new("RGB", (64, 48), (200, 30, 30)).save(folder / "a.jpg", "JPEG")
    (tmp_path / "urls.txt").write_text(f"{url}/a.jpg\n")
    given = {"url_list": tmp_path / "urls.txt", "output_folder": tmp_path / "out"}
    args = ["download", "--allow_private_networks", "--progress_interval=0.5"]
    for name, default in img2dataset_parameters():
        value = given.get(name, default)
        if value is REQUIRED or value is None:
            continue
        args.append(f"--{name}={flag_value(value)}")
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    assert "success 1 (100.0%)" in result.stdout
    meta = json.loads((tmp_path / "out" / "00000" / "000000000.json").read_text())
    assert (meta["width"], meta["height"], meta["exif"]) == (256, 256, "{}")


def exif_bytes(i):
    exif = Image.Exif()
    exif[0x010F] = ["Canon", "NIKON CORPORATION", "Caf\u00e9 Mak\u00e9"][i % 3]
    exif[0x0110] = f"Model {i}"
    exif[0x0112] = 1 + i % 8
    exif[0x011A] = IFDRational(72 + i, 1 + i % 3)
    exif[0x0128] = 2
    exif[0x0132] = "2024:01:02 03:04:05"
    exif[0x013B] = "  someone 'quoted'  "
    exif[0x8769] = {
        0x829A: IFDRational(1, [60, 250, 4000][i % 3]),
        0x829D: IFDRational(28, 10),
        0x8827: 100 * (i + 1),
        0x9000: b"0231",
        0x9204: IFDRational(-2, 3),
        0x9209: [0, 1, 16, 24, 99][i % 5],
        0xA001: 1,
        0xA434: "Lens \u00ae 50mm",
        0x9286: b"ASCII\x00\x00\x00a comment",
    }
    exif[0x8825] = {
        0: b"\x02\x03\x00\x00",
        1: "N",
        2: (IFDRational(48, 1), IFDRational(51, 1), IFDRational(2950, 100)),
        6: IFDRational(35, 1),
    }
    return exif.tobytes()


def test_exif_field_is_what_img2datasets_exifread_gives(tmp_path, served):
    import exifread  # installed next to img2dataset by scripts/test-python.sh, as img2dataset pins it

    folder, url = served
    names = []
    for i in range(6):
        image = Image.new("RGB", (40 + i, 30), (i * 40, 100, 200))
        fmt, ext = [("JPEG", "jpg"), ("WEBP", "webp"), ("PNG", "png")][i % 3]
        image.save(folder / f"{i}.{ext}", fmt, **({"exif": exif_bytes(i)} if fmt != "PNG" else {}))
        names.append(f"{i}.{ext}")
    (tmp_path / "urls.csv").write_text("url,name\n" + "".join(f"{url}/{n},{n}\n" for n in names))
    result = run_cli(
        "download",
        "--url-list",
        str(tmp_path / "urls.csv"),
        "--input-format",
        "csv",
        "--save-additional-columns",
        "name",
        "--output-folder",
        str(tmp_path / "out"),
        "--allow-private-networks",
        "--image-size",
        "32",
    )
    assert result.returncode == 0, result.stderr
    compared = []
    for json_path in sorted((tmp_path / "out" / "00000").glob("*.json")):
        meta = json.loads(json_path.read_text())
        original = (folder / meta["name"]).read_bytes()
        # img2dataset's downloader.py, verbatim in effect
        tags = exifread.process_file(io.BytesIO(original), details=False)
        expected = json.dumps({k: str(v).strip() for k, v in tags.items() if v is not None})
        assert meta["exif"] == expected, meta["name"]
        compared.append(meta["exif"])
    assert len(compared) == len(names)
    assert sum('"Image Make"' in (e or "") for e in compared) >= 2  # the JPEGs' tags, not only "{}"s


def test_webdataset_reads_the_download_shards(world, tmp_path):
    """`clipstream download --output-format webdataset` writes shards that the webdataset package reads as
    img2dataset's: an image, its caption and its json per sample, the json's fields as img2dataset writes them."""
    import webdataset as wds

    urls = tmp_path / "urls.csv"
    urls.write_text("url,caption\n" + "".join(f"{world.images_url}/images/{i}.jpg,image {i}\n" for i in range(40)))
    out = tmp_path / "out"
    run = subprocess.run(
        cli_command()
        + [
            "download",
            "--url-list",
            str(urls),
            "--input-format",
            "csv",
            "--caption-col",
            "caption",
            "--output-format",
            "webdataset",
        ]
        + [
            "--output-folder",
            str(out),
            "--image-size",
            "64",
            "--resize-mode",
            "center_crop",
            "--number-sample-per-shard",
            "16",
        ]
        + ["--allow-private-networks", "--processes-count", "1", "--thread-count", "8"],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert run.returncode == 0, run.stderr
    shards = sorted(str(p) for p in out.glob("*.tar"))
    assert len(shards) == 3
    samples = list(
        wds.WebDataset(shards, shardshuffle=False, empty_check=False).decode("pil").to_tuple("jpg", "txt", "json")
    )
    stats = [json.loads(p.read_text()) for p in out.glob("*_stats.json")]
    assert len(samples) == sum(s["successes"] for s in stats) > 0
    for image, caption, meta in samples:
        assert image.size == (64, 64)
        assert caption == meta["caption"] and meta["status"] == "success"
        assert list(meta)[:4] == ["caption", "url", "key", "status"]  # img2dataset's field order
