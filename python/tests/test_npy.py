"""npy images (`image.encode_format: npy`): what the client accepts and what it refuses, without a server."""

import io

import numpy as np
import pytest
from clipstream.decode import npy_image as _npy_image
from clipstream.errors import StreamError


def saved(array, **kwargs):
    buffer = io.BytesIO()
    np.save(buffer, array, **kwargs)
    return buffer.getvalue()


def huge_header():
    header = b"{'shape': (10000000, 10000000, 3), 'fortran_order': False, 'descr': '|u1', }"
    header += b" " * (63 - (10 + len(header)) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + bytes(100)


def pixels_of(data):
    height, width, pixels = _npy_image(data, "k")
    return np.frombuffer(pixels, dtype=np.uint8).reshape(height, width, 3)


def test_np_save_of_an_hwc_uint8_array_reads_back_exactly():
    array = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    assert np.array_equal(pixels_of(saved(array)), array)


def test_other_valid_layouts_are_read_with_numpys_header_reader():
    array = np.arange(6 * 7 * 3, dtype=np.uint8).reshape(6, 7, 3)
    assert np.array_equal(pixels_of(saved(np.asfortranarray(array))), array)


@pytest.mark.parametrize(
    "data, message",
    [
        (saved(np.zeros((4, 5, 3), dtype=np.float32)), "uint8 image"),
        (saved(np.zeros((4, 5), dtype=np.uint8)), "uint8 image"),
        (saved(np.zeros((4, 5, 4), dtype=np.uint8)), "uint8 image"),
        (saved(np.zeros((4, 5, 3), dtype=np.uint8))[:-1], "bytes of pixels"),
        (saved(np.array([{"a": 1}], dtype=object), allow_pickle=True), "uint8 image"),  # never unpickled
        (b"\xff\xd8\xff not an array", "not a numpy array"),
        (saved(np.zeros((0, 5, 3), dtype=np.uint8)), "bytes of pixels"),
        # A header that declares 273 TiB (keys reordered, so not clipstream's own): refused, nothing allocated.
        (huge_header(), "bytes of pixels"),
    ],
)
def test_anything_else_is_refused_with_the_sample_key(data, message):
    with pytest.raises(StreamError, match=message) as info:
        _npy_image(data, "e0p0s7")
    assert "e0p0s7" in str(info.value)
