"""End to end against the real node server (`clipstream serve` on a demo world): partitioning by worker and rank,
exact resume, webdataset compatibility, a server killed mid-stream, serve()'s errors."""

import collections
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import torch
from clipstream import (
    ClipStreamDataset,
    ServeError,
    StateError,
    StateTracker,
    StreamError,
    collate,
    list_streams,
    serve,
)
from live import COUNTS, REPO, cli_command
from torch.utils.data import DataLoader

STREAM = "colours"


def samples_of(loader):
    """Flattens batches (collate's dict of lists) or single samples into a list of per-sample dicts."""
    out = []
    for item in loader:
        if isinstance(item["__key__"], list):
            out += [dict(zip(item, values)) for values in zip(*(_rows(v) for v in item.values()))]
        else:
            out.append(item)
    return out


def _rows(value):
    return list(value) if not isinstance(value, torch.Tensor) else list(value.unbind(0))


def check_planned(samples, url, partitions):
    """Exactly the plan for P partitions: the announced total, every partition its quota of every query, no
    sample twice (repeats, flagged, excepted)."""
    info = ClipStreamDataset(url, stream=STREAM).info(partitions)
    assert info["total"] == sum(count // partitions for count in COUNTS.values()) * partitions
    assert len(samples) == info["total"]
    keys = [s["__key__"] for s in samples]
    assert len(set(keys)) == len(keys), "a sample was delivered twice"
    fresh = [s["json"]["id"] for s in samples if not s["json"].get("repeat")]
    assert len(set(fresh)) == len(fresh), "an index row was delivered twice"
    quota = {q["name"]: q["quota"] for q in info["queries"]}
    per_partition = collections.Counter((s["json"]["partition"], s["json"]["query"]) for s in samples)
    assert per_partition == collections.Counter({(p, q): n for p in range(partitions) for q, n in quota.items()})


@pytest.mark.parametrize("num_workers", [0, 2, 3])
def test_dataloader_yields_exactly_the_planned_samples(live, num_workers):
    dataset = ClipStreamDataset(live.url, decode="tensor")
    loader = DataLoader(dataset, batch_size=4, num_workers=num_workers, collate_fn=collate)
    batches = list(loader)
    assert batches[0]["image"].dtype == torch.uint8 and batches[0]["image"].shape[1:] == (3, 32, 32)
    samples = samples_of(batches)
    check_planned(samples, live.url, max(num_workers, 1))
    assert all(s["caption"] for s in samples)
    assert all(s["json"]["query"] in COUNTS for s in samples)


def test_torch_default_collate_works(live):
    loader = DataLoader(ClipStreamDataset(live.url, decode="tensor"), batch_size=8, num_workers=2)
    batch = next(iter(loader))
    assert batch["image"].shape == (8, 3, 32, 32)
    assert isinstance(batch["json"], list) and batch["json"][0]["query"] in COUNTS  # not collated field by field
    assert isinstance(batch["caption"], list) and isinstance(batch["__state__"][0], str)
    tracker = StateTracker()
    tracker.update(batch)
    assert tracker.state_dict()["states"]["0"] == batch["__state__"][-1]


def test_pil_and_raw_decoding_and_transform(live):
    pil = next(iter(ClipStreamDataset(live.url, decode="pil")))
    assert pil["image"].mode == "RGB" and pil["image"].size == (32, 32)
    raw = next(iter(ClipStreamDataset(live.url, decode="raw")))
    assert raw["image"][:2] == b"\xff\xd8" and raw["__key__"] == pil["__key__"] == "e0p0s0"
    sized = next(iter(ClipStreamDataset(live.url, decode="tensor", transform=lambda t: t.float().mean())))
    assert sized["image"].shape == ()


def test_npy_images_need_no_decoding_and_webdataset_reads_them(world):
    spec = world.spec(world.dir / "npy.yaml", encode_format="npy")
    with serve(spec, name="pixels") as server:
        loader = DataLoader(
            ClipStreamDataset(server.url, decode="tensor"), batch_size=6, num_workers=2, collate_fn=collate
        )
        samples = samples_of(loader)
        assert len(samples) == 60
        colour = {"red": 0, "green": 1, "blue": 2}
        for s in samples:
            image = s["image"]
            assert image.dtype == torch.uint8 and image.shape == (3, 32, 32)
            means = image.float().mean(dim=(1, 2))
            assert int(means.argmax()) == colour[s["json"]["query"]], (s["json"]["query"], means.tolist())
        pil = next(iter(ClipStreamDataset(server.url, decode="pil")))
        assert pil["image"].mode == "RGB" and pil["image"].size == (32, 32)
        raw = next(iter(ClipStreamDataset(server.url, decode="raw")))
        assert raw["image"][:6] == b"\x93NUMPY" and len(raw["image"]) == 128 + 32 * 32 * 3
        assert torch.equal(
            torch.from_numpy(_np_load(raw["image"])).permute(2, 0, 1),
            samples_of([next(iter(ClipStreamDataset(server.url, decode="tensor")))])[0]["image"],
        )
        wds = pytest.importorskip("webdataset")
        decoded = next(
            iter(
                wds.WebDataset(
                    f"{server.url}/streams/pixels/{{0..1}}.tar?partitions=2", shardshuffle=False, empty_check=False
                ).decode()
            )
        )
        assert decoded["npy"].shape == (32, 32, 3) and str(decoded["npy"].dtype) == "uint8"


def _np_load(data):
    import io

    import numpy as np

    return np.load(io.BytesIO(data), allow_pickle=False)


def test_two_ranks_get_equal_counts_and_disjoint_samples(live, monkeypatch):
    ranks = []
    for rank in range(2):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", "2")
        loader = DataLoader(ClipStreamDataset(live.url), batch_size=None, num_workers=2)
        ranks.append(samples_of(loader))
    assert len(ranks[0]) == len(ranks[1]) > 0
    assert {s["json"]["partition"] for s in ranks[0]} == {0, 1}
    assert {s["json"]["partition"] for s in ranks[1]} == {2, 3}
    assert not {s["__key__"] for s in ranks[0]} & {s["__key__"] for s in ranks[1]}
    check_planned(ranks[0] + ranks[1], live.url, 4)
    explicit = samples_of(DataLoader(ClipStreamDataset(live.url, rank=1, world_size=2), batch_size=None, num_workers=2))
    assert sorted(s["__key__"] for s in explicit) == sorted(s["__key__"] for s in ranks[1])


def test_ranks_from_torch_distributed(live, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE")}
    script = os.path.join(os.path.dirname(__file__), "dist_worker.py")
    outs = [tmp_path / f"rank{r}.json" for r in range(2)]
    ranks = [
        subprocess.Popen(
            [sys.executable, script, live.url, str(tmp_path / "rendezvous"), str(r), str(outs[r])], env=env
        )
        for r in range(2)
    ]
    assert [rank.wait(timeout=120) for rank in ranks] == [0, 0]
    got = [json.loads(out.read_text()) for out in outs]
    assert {p for _, p in got[0]} == {0, 1} and {p for _, p in got[1]} == {2, 3}
    assert len(got[0]) == len(got[1]) == 28
    assert not {k for k, _ in got[0]} & {k for k, _ in got[1]}


def test_epochs_deliver_the_same_samples_in_a_new_order(live):
    dataset = ClipStreamDataset(live.url, decode="raw")
    first = [(s["json"]["id"], s["__key__"]) for s in dataset]
    assert dataset.epoch == 1  # a completed pass moves on
    second = [(s["json"]["id"], s["__key__"]) for s in dataset]
    assert sorted(i for i, _ in first) == sorted(i for i, _ in second)
    assert [i for i, _ in first] != [i for i, _ in second]
    assert second[0][1] == "e1p0s0"


def test_an_infinite_stream_crosses_epochs_and_resumes_exactly(live):
    def stream(state=None):
        dataset = ClipStreamDataset(live.url, decode="raw", infinite=True)
        if state is not None:
            dataset.load_state_dict(state)
        return dataset, DataLoader(dataset, batch_size=None, num_workers=2)

    dataset, loader = stream()
    tracker = StateTracker(dataset)
    head = []
    for sample in loader:
        head.append(tracker.update(sample)["__key__"])
        if len(head) == 70:  # past the 60 samples of epoch 0
            break
    state = tracker.state_dict()
    _, resumed = stream(state)
    tail = []
    for sample in resumed:
        tail.append(sample["__key__"])
        if len(tail) == 70:
            break
    assert {k[:2] for k in head} == {"e0", "e1"} and set(head).isdisjoint(tail)
    assert sorted(k for k in head + tail if k.startswith("e1")) == sorted(
        f"e1p{p}s{n}" for p in range(2) for n in range(30)
    )
    assert any(k.startswith("e2") for k in tail)


def test_state_dict_resumes_exactly_mid_epoch(live):
    full = [s["__key__"] for s in ClipStreamDataset(live.url, decode="raw")]
    dataset = ClipStreamDataset(live.url, decode="raw")
    it = iter(dataset)
    head = [next(it)["__key__"] for _ in range(17)]
    checkpoint = json.loads(json.dumps(dataset.state_dict()))  # survives JSON (and torch.save)
    assert checkpoint["partitions"] == 1 and json.loads(checkpoint["states"]["0"])["delivered"] == 17
    resumed = ClipStreamDataset(live.url, decode="raw")
    resumed.load_state_dict(checkpoint)
    tail = [s["__key__"] for s in resumed]
    assert head + tail == full


@pytest.mark.parametrize("num_workers", [0, 2])
def test_stateful_dataloader_resumes_exactly(live, num_workers):
    stateful = pytest.importorskip("torchdata.stateful_dataloader", reason="torchdata not installed")

    def loader(state=None):
        made = stateful.StatefulDataLoader(
            ClipStreamDataset(live.url, decode="raw"), batch_size=3, num_workers=num_workers, collate_fn=collate
        )
        if state is not None:
            made.load_state_dict(state)
        return made

    full = [s["__key__"] for s in samples_of(loader())]
    first = loader()
    it = iter(first)
    head = samples_of([next(it) for _ in range(5)])
    state = first.state_dict()
    del it, first
    tail = samples_of(loader(state))
    keys = [s["__key__"] for s in head + tail]
    assert len(keys) == len(set(keys)) == len(full)
    assert set(keys) == set(full)
    if num_workers == 0:
        assert keys == full


def test_plain_dataloader_with_workers_resumes_with_a_state_tracker(live):
    def loader(state=None):
        dataset = ClipStreamDataset(live.url, decode="raw")
        if state is not None:
            dataset.load_state_dict(state)
        return dataset, DataLoader(dataset, batch_size=4, num_workers=2, collate_fn=collate)

    full = {s["__key__"] for s in samples_of(loader()[1])}
    dataset, first = loader()
    tracker = StateTracker(dataset)
    head = []
    for batch in first:
        head += samples_of([tracker.update(batch)])
        if len(head) >= 18:
            break
    state = tracker.state_dict()
    assert state["partitions"] == 2 and set(state["states"]) == {"0", "1"}
    tail = samples_of(loader(state)[1])
    keys = [s["__key__"] for s in head + tail]
    assert len(keys) == len(set(keys)) == len(full) and set(keys) == full


def test_a_state_from_another_partition_count_is_refused(live):
    dataset = ClipStreamDataset(live.url, decode="raw")
    it = iter(dataset)
    next(it)
    state = dataset.state_dict()
    other = ClipStreamDataset(live.url, decode="raw")
    other.load_state_dict(state)
    batches = iter(DataLoader(other, batch_size=None, num_workers=2))
    with pytest.raises(StateError, match="saved with 1 partitions .* this run reads 2"):
        next(batches)
    batches._shutdown_workers()  # now, not whenever the garbage collector gets to the traceback's cycle
    with pytest.raises(StateError, match="for stream 'other', this dataset reads 'colours'"):
        ClipStreamDataset(live.url, stream="colours").load_state_dict(dict(state, stream="other"))


def test_webdataset_reads_the_same_urls(live):
    wds = pytest.importorskip("webdataset")
    urls = f"{live.url}/streams/{STREAM}/{{0..2}}.tar?partitions=3&epoch=0"
    theirs = {s["__key__"]: s for s in wds.WebDataset(urls, shardshuffle=False, empty_check=False)}
    ours = {
        s["__key__"]: s
        for s in samples_of(DataLoader(ClipStreamDataset(live.url, decode="raw"), batch_size=None, num_workers=3))
    }
    assert len(theirs) == 60 and theirs.keys() == ours.keys()
    for key, sample in ours.items():
        assert json.loads(theirs[key]["json"])["id"] == sample["json"]["id"]
        assert theirs[key]["txt"].decode() == sample["caption"]
        assert theirs[key]["state"].decode() == sample["__state__"]
    decoded = next(iter(wds.WebDataset(urls, shardshuffle=False, empty_check=False).decode("pil")))
    assert decoded["jpg"].size == (32, 32)


def test_killing_the_server_mid_stream_is_a_clear_error_not_a_hang(spec):
    with serve(spec, name=STREAM) as server:
        dataset = ClipStreamDataset(server.url, decode="raw", retries=2, backoff=0.2, timeout=5)
        got = []
        start = time.monotonic()
        with pytest.raises(StreamError, match="gave up after 2 retries") as info:
            for sample in dataset:
                got.append(sample)
                if len(got) == 10:
                    os.killpg(server.process.pid, signal.SIGKILL)
        assert time.monotonic() - start < 30
    assert 10 <= len(got) < 60
    assert "partition 0 of 1" in str(info.value)
    assert json.loads(dataset.state_dict()["states"]["0"])["delivered"] == len(got)


def test_a_server_restarted_mid_stream_is_resumed_transparently(spec, live):
    full = [(s["__key__"], s["json"]["id"]) for s in ClipStreamDataset(live.url, decode="raw")]
    first = serve(spec, name=STREAM)
    port = int(first.url.rsplit(":", 1)[1])
    dataset = ClipStreamDataset(first.url, decode="raw", retries=8, backoff=0.2, timeout=10)
    got, second = [], None
    try:
        for sample in dataset:
            got.append((sample["__key__"], sample["json"]["id"]))
            if len(got) == 20:
                first.stop()
                second = serve(spec, port=port, name=STREAM)
    finally:
        first.stop()
        if second is not None:
            second.stop()
    assert second is not None
    assert got == full


def test_serve_with_a_bad_spec_raises_the_servers_error(world, tmp_path):
    bad = world.spec(tmp_path / "bad.yaml", counts={"red": 0})
    with pytest.raises(ServeError) as info:
        serve(bad, startup_timeout=60)
    message = str(info.value)
    assert "clipstream: error:" in message and "count" in message
    assert info.value.returncode not in (None, 0)


def test_serve_a_spec_given_as_a_dict(world):
    import yaml

    spec = yaml.safe_load(world.spec(world.dir / "as-dict.yaml").read_text())
    with serve(spec, name="fromdict", host="127.0.0.1") as server:
        assert [s["name"] for s in list_streams(server.url)] == ["fromdict"]
        assert len(list(ClipStreamDataset(server.url, decode="raw"))) == 60
        spec_file = server.args[server.args.index("--spec") + 1].split("=", 1)[1]
        assert os.path.exists(spec_file)
    assert server.process.poll() is not None and not os.path.exists(spec_file)


def test_serve_without_a_cli_says_how_to_get_one(monkeypatch, tmp_path):
    monkeypatch.delenv("CLIPSTREAM_CLI", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.chdir(tmp_path)  # outside the checkout (the installed package is outside it too)
    with pytest.raises(ServeError, match="CLIPSTREAM_CLI"):
        serve(tmp_path / "spec.yaml")


def test_serve_finds_the_checkouts_cli_without_environment_variables(monkeypatch):
    from clipstream.server import cli_command

    monkeypatch.delenv("CLIPSTREAM_CLI", raising=False)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    monkeypatch.chdir(REPO / "python" / "tests")
    assert cli_command() == [str(REPO / "clipstream")]


def test_a_stream_whose_hosts_are_all_refused_raises_the_reasons_at_once(world):
    import yaml

    spec = yaml.safe_load(world.spec(world.dir / "private.yaml").read_text())
    spec["fetch"]["allow_private_networks"] = False
    with serve(spec, name="private") as server:
        started = time.monotonic()
        with pytest.raises(StreamError) as info:
            list(ClipStreamDataset(server.url, decode="raw", retries=3))
        assert time.monotonic() - started < 10, "an exhausted partition must not be retried"
        assert info.value.code == "STREAM_EXHAUSTED"
        message = str(info.value)
        assert re.search(r"private_address \d+", message), message
        assert "allow_private_networks: true" in message
        deadline = time.monotonic() + 5  # the server's stderr is read by a thread: the line may come a moment later
        while not re.search(r"could not start: STREAM_EXHAUSTED", server.log) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert re.search(r"could not start: STREAM_EXHAUSTED", server.log), server.log


def test_serve_takes_query_embeddings_as_numpy_arrays(world):
    import numpy as np
    import yaml

    rows = np.load(world.dir / "embeddings" / "img_emb" / "img_emb_0.npy").astype(np.float32)
    spec = yaml.safe_load(world.spec(world.dir / "by-embedding.yaml").read_text())
    for vector in (rows[0], rows[:1]):  # np.save(path, vector) and a (1, d) row
        spec["queries"] = [{"name": "like0", "embedding": vector, "count": 4, "min_similarity": 0.99}]
        with serve(spec, name="byembedding") as server:
            samples = list(ClipStreamDataset(server.url, decode="raw"))
        assert len(samples) == 4
        assert len({s["json"]["colour"] for s in samples}) == 1
    for bad, message in (
        (rows[:3], r"shape \(3, \d+\) holds 3 embeddings"),
        (np.full(rows.shape[1], np.nan), "value 0 is NaN"),
    ):
        spec["queries"] = [{"name": "bad", "embedding": bad, "count": 4}]
        with pytest.raises(ServeError, match=message):
            serve(spec)


def test_examples_train_trains_checkpoints_and_resumes(live, tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "examples" / "train.py"),
            "--url",
            live.url,
            "--steps",
            "4",
            "--batch-size",
            "4",
            "--num-workers",
            "2",
            "--checkpoint",
            str(tmp_path / "ckpt.pt"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "resumed from" in result.stdout
    assert "no sample seen twice" in result.stdout
    assert (tmp_path / "ckpt.pt").exists()


def test_the_demos_python_lines_run_while_the_world_is_served(world):
    """`clipstream demo` ends by printing how to train on its stream from Python; with `demo --world DIR` serving
    (the world fixture runs exactly that), those lines run as printed."""
    script = f"import('{REPO / 'dist' / 'cli' / 'demo.js'}').then((m) => console.log(m.pythonLines({json.dumps(str(world.dir))}).join('\\n')))"
    node = cli_command()[0]  # CLIPSTREAM_CLI is "NODE dist/cli/main.js" in the test script
    printed = subprocess.run(
        [node, "--input-type=module", "-e", script], capture_output=True, text=True, check=True
    ).stdout
    assert f"./clipstream demo --world {world.dir}" in printed
    code = "\n".join(
        line[2:] for line in printed.splitlines() if line.startswith("  ") and not line.startswith("  ./clipstream")
    )
    code = code.replace("for batch in loader: ...", "batches = list(loader)")
    scope = {}
    exec(code, scope)  # noqa: S102 - the printed lines, as a user pastes them
    assert sum(len(b["image"]) for b in scope["batches"]) == 300  # the demo spec: red 150, blue 100, green 50


def test_a_server_with_a_token_is_read_with_it_and_refuses_without_it(world, monkeypatch):
    monkeypatch.delenv("CLIPSTREAM_TOKEN", raising=False)
    spec = world.spec(world.dir / "token.yaml", counts={"red": 6})
    with serve(spec, name="locked", token="python-client-token") as server:
        assert server.token == "python-client-token"
        assert "python-client-token" not in " ".join(server.args)  # given in the environment, not on the command line
        got = list(ClipStreamDataset(server, decode="raw"))  # the token of serve()'s server
        assert len(got) == 6
        assert len(list(ClipStreamDataset(server.url, stream="locked", decode="raw", token="python-client-token"))) == 6
        assert [s["name"] for s in list_streams(server)] == ["locked"]
        for token in (None, "a-wrong-token"):
            with pytest.raises(StreamError) as info:
                list(ClipStreamDataset(server.url, stream="locked", decode="raw", token=token, retries=0))
            assert info.value.status == 401 and "token" in str(info.value)
        monkeypatch.setenv("CLIPSTREAM_TOKEN", "python-client-token")
        assert len(list(ClipStreamDataset(server.url, stream="locked", decode="raw"))) == 6
