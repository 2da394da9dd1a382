"""Fault injection against a stand-in server that can be told to cut, stall or fail: a cut stream resumes
transparently from the last sample received, a dead or silent server gives a clear StreamError in bounded time.
The same guarantees against the real node server are in test_live.py."""

import json
import socket
import time

import pytest
from clipstream import ClipStreamDataset, StreamError


def keys(dataset):
    return [sample["__key__"] for sample in dataset]


def test_a_cut_stream_resumes_from_the_last_sample_received(fake):
    expected = keys(ClipStreamDataset(fake.url))
    fake.requests.clear()
    fake.cut_after = [5, 0, 7]
    assert keys(ClipStreamDataset(fake.url, backoff=0.01)) == expected
    states = [r for r in fake.requests if "state=" in r]
    assert len(states) == 3
    assert '"delivered":5' in states[0].replace("%22", '"').replace("%3A", ":").replace("%2C", ",")


def test_5xx_and_429_are_retried(fake):
    fake.fail_status = [503, 429, 500]
    assert len(keys(ClipStreamDataset(fake.url, stream="fake", backoff=0.01))) == 36


def test_4xx_raises_at_once_with_the_servers_message(fake):
    dataset = ClipStreamDataset(fake.url, stream="nope", backoff=0.01)
    with pytest.raises(StreamError, match="unknown stream") as info:
        keys(dataset)
    assert info.value.status == 404
    assert len(fake.requests) == 1


def test_a_refused_state_raises_the_servers_message(fake):
    dataset = ClipStreamDataset(fake.url)
    state = json.dumps({"v": 1, "plan": "fake", "p": 0, "P": 1, "epoch": 3, "delivered": 2})
    dataset.load_state_dict({"clipstream": 1, "stream": "fake", "epoch": 0, "partitions": 1, "states": {"0": state}})
    with pytest.raises(StreamError, match="HTTP 400: state: made for another"):
        keys(dataset)


def test_a_server_that_dies_mid_stream_gives_a_clear_error_after_the_retries(fake):
    dataset = ClipStreamDataset(fake.url, stream="fake", retries=2, backoff=0.01, timeout=2)
    fake.cut_after = [4]
    got = []
    start = time.monotonic()
    with pytest.raises(StreamError) as info:
        for sample in dataset:
            got.append(sample)
            if len(got) == 4:
                fake.close()  # every reconnection is refused from now on
    assert time.monotonic() - start < 5
    assert len(got) == 4
    assert "gave up after 2 retries" in str(info.value)
    assert "partition 0 of 1" in str(info.value)
    assert json.loads(dataset.state_dict()["states"]["0"])["delivered"] == 4


def test_an_unreachable_server_is_an_error_not_a_hang():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    start = time.monotonic()
    with pytest.raises(StreamError, match="gave up after 2 retries"):
        ClipStreamDataset(f"http://127.0.0.1:{port}", retries=2, backoff=0.01)
    with pytest.raises(StreamError, match="ConnectionRefused"):
        keys(ClipStreamDataset(f"http://127.0.0.1:{port}", stream="s", retries=1, backoff=0.01))
    assert time.monotonic() - start < 5


def test_a_silent_server_times_out_instead_of_hanging(fake):
    fake.stall_at = 3
    dataset = ClipStreamDataset(fake.url, stream="fake", timeout=0.5, retries=1, backoff=0.01)
    start = time.monotonic()
    with pytest.raises(StreamError, match="timed out"):
        keys(dataset)
    assert time.monotonic() - start < 4


def test_a_stall_then_recovery_is_transparent(fake):
    expected = keys(ClipStreamDataset(fake.url))
    fake.stall_at, fake.stalls, fake.stall_seconds = 3, 2, 2.0
    dataset = ClipStreamDataset(fake.url, timeout=0.3, backoff=0.01, retries=3)
    assert keys(dataset) == expected
    assert fake.stalls == 0


def test_several_streams_need_a_name(fake):
    from fake_server import FakeStream

    fake.streams.append(FakeStream("other"))
    with pytest.raises(StreamError, match=r"serves 2 streams \(fake, other\): pass stream=NAME"):
        ClipStreamDataset(fake.url)
    assert ClipStreamDataset(fake.url, stream="other").stream == "other"
