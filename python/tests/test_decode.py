"""decode="tensor" of JPEG members: torchvision's decoder when installed, PIL's otherwise; the same pixels."""

import io

import pytest
import torch
from clipstream import dataset, decode
from PIL import Image


def jpeg(mode="RGB", size=(40, 30)):
    image = Image.new(mode, size)
    image.putdata(
        [
            ((x * 7) % 256, (x * 3) % 256, (x * 11) % 256)[: len(mode)] if mode != "L" else (x * 5) % 256
            for x in range(size[0] * size[1])
        ]
    )
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def pil_tensor(data):
    return decode.to_tensor(decode.pil_rgb(data))


def png():
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (10, 20, 30)).save(buffer, "PNG")
    return buffer.getvalue()


def decoded(data, member="jpg"):
    ds = dataset.ClipStreamDataset("http://127.0.0.1:9", stream="s", decode="tensor")
    return ds._decode({"__key__": "k", member: data, "state": b"{}"})["image"]


def test_tensor_decoding_sends_jpegs_to_the_jpeg_decoder_and_the_rest_to_pil(monkeypatch):
    seen = []

    def recording(data):
        seen.append(bytes(data[:3]))
        return pil_tensor(data)

    decode.jpeg_to_tensor.cache_clear()
    monkeypatch.setattr(decode, "jpeg_to_tensor", lambda: recording)
    assert torch.equal(decoded(jpeg()), pil_tensor(jpeg()))
    assert seen == [b"\xff\xd8\xff"]
    assert decoded(png(), "png").shape == (3, 30, 40)
    assert seen == [b"\xff\xd8\xff"]  # the png did not go to the JPEG decoder


def test_what_torchvision_refuses_is_decoded_by_pil(monkeypatch):
    torchvision_io = pytest.importorskip("torchvision.io")

    def refusing(*args, **kwargs):
        raise RuntimeError("Unsupported color conversion request")

    monkeypatch.setattr(torchvision_io, "decode_jpeg", refusing)
    decode.jpeg_to_tensor.cache_clear()
    try:
        data = jpeg()
        assert torch.equal(decode.jpeg_to_tensor()(data), pil_tensor(data))
    finally:
        decode.jpeg_to_tensor.cache_clear()


@pytest.mark.parametrize("mode", ["RGB", "L", "CMYK"])
def test_torchvision_decodes_what_pil_decodes(mode):
    pytest.importorskip("torchvision")
    decode.jpeg_to_tensor.cache_clear()
    to_tensor = decode.jpeg_to_tensor()
    assert to_tensor is not None
    data = jpeg(mode)
    ours, pils = to_tensor(data), pil_tensor(data)
    assert ours.shape == pils.shape == (3, 30, 40) and ours.dtype == torch.uint8
    assert (ours.int() - pils.int()).abs().max() <= 2  # both are libjpeg-turbo; CMYK goes through PIL


def test_without_torchvision_pil_decodes(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_torchvision(name, *args, **kwargs):
        if name.startswith("torchvision"):
            raise ImportError("no torchvision here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_torchvision)
    decode.jpeg_to_tensor.cache_clear()
    try:
        assert decode.jpeg_to_tensor() is None
        data = jpeg()
        sample = dataset.ClipStreamDataset("http://127.0.0.1:9", stream="s", decode="tensor")._decode(
            {"__key__": "k", "jpg": data, "state": b"{}"}
        )
        assert torch.equal(sample["image"], pil_tensor(data))
    finally:
        decode.jpeg_to_tensor.cache_clear()
