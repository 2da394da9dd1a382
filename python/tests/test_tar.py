"""The streaming tar reader against archives made by Python's tarfile, and every possible truncation."""

import io
import tarfile

import pytest
from clipstream.errors import TarFormatError, TruncatedTar
from clipstream.tar import group_samples, split_key, tar_members

SAMPLES = [("e0p0s0", b"\xff\xd8jpeg0"), ("e0p0s1", b"\x89PNG" + bytes(700)), ("e0p0s2", b"x" * 512)]


def make_tar(members, fmt=tarfile.USTAR_FORMAT):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def sample_members(samples=SAMPLES):
    for key, image in samples:
        yield f"{key}.jpg", image
        yield f"{key}.txt", f"caption of {key}".encode()
        yield f"{key}.json", b'{"id": "%s"}' % key.encode()
        yield f"{key}.state", b'{"delivered": %d}' % (int(key.split("s")[-1]) + 1)


def reader(data, chunk=7):
    stream = io.BytesIO(data)
    return lambda n: stream.read(min(n, chunk))  # short reads, as a socket gives


@pytest.mark.parametrize("fmt", [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_members_in_order_whatever_the_format(fmt):
    members = list(sample_members())
    assert list(tar_members(reader(make_tar(members, fmt)))) == members


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_long_names(fmt):
    name = "d/" + "k" * 150 + ".txt"
    assert list(tar_members(reader(make_tar([(name, b"hi")], fmt)))) == [(name, b"hi")]


def test_groups_members_into_samples_by_key():
    samples = list(group_samples(tar_members(reader(make_tar(list(sample_members()))))))
    assert [s["__key__"] for s in samples] == ["e0p0s0", "e0p0s1", "e0p0s2"]
    assert samples[1]["jpg"] == SAMPLES[1][1]
    assert samples[2]["txt"] == b"caption of e0p0s2"
    assert sorted(samples[0]) == ["__key__", "jpg", "json", "state", "txt"]


def test_a_sample_is_yielded_when_its_state_arrives_not_when_the_next_one_starts():
    members = iter(list(sample_members()))
    consumed = []

    def source():
        for member in members:
            consumed.append(member[0])
            yield member

    first = next(group_samples(source()))
    assert first["__key__"] == "e0p0s0" and consumed[-1] == "e0p0s0.state"


def test_state_first_still_groups_by_key_change():
    members = [("k1.state", b"1"), ("k1.jpg", b"a"), ("k2.state", b"2"), ("k2.jpg", b"b")]
    assert [s["jpg"] for s in group_samples(iter(members))] == [b"a", b"b"]


def test_webdataset_key_split():
    assert split_key("dir/e0p3s17.jpg") == ("dir/e0p3s17", "jpg")
    assert split_key("a.b.c") == ("a", "b.c")
    assert split_key("nodot") is None


def test_every_truncation_is_reported_never_a_short_archive():
    members = list(sample_members())
    data = make_tar(members)
    # Offsets where a whole sample (its .state member included) has arrived.
    boundaries, offset = [], 0
    for name, body in members:
        offset += 512 + len(body) + (-len(body)) % 512
        if name.endswith(".state"):
            boundaries.append(offset)
    content_end = boundaries[-1]
    assert data[content_end : content_end + 1024] == bytes(1024)
    for cut in range(0, content_end, 3):
        got = []
        with pytest.raises(TruncatedTar):
            for sample in group_samples(tar_members(reader(data[:cut], chunk=64))):
                got.append(sample["__key__"])
        assert len(got) == sum(1 for b in boundaries if b <= cut), cut


def test_one_end_block_ends_the_archive():
    members = list(sample_members())
    data = make_tar(members)
    content_end = sum(512 + len(body) + (-len(body)) % 512 for _, body in members)
    assert len(list(group_samples(tar_members(reader(data[: content_end + 512]))))) == 3


def test_a_corrupt_header_is_a_format_error_not_a_truncation():
    data = bytearray(make_tar([("a.txt", b"hi")]))
    data[10] ^= 0xFF
    with pytest.raises(TarFormatError) as info:
        list(tar_members(reader(bytes(data))))
    assert not isinstance(info.value, TruncatedTar)
    assert "checksum" in str(info.value)


def test_member_after_state_is_refused():
    members = [("k1.jpg", b"a"), ("k1.state", b"1"), ("k1.txt", b"late")]
    with pytest.raises(TarFormatError, match="after its sample's .state"):
        list(group_samples(iter(members)))
