"""Decoding a sample's image member: JPEG/PNG/WebP through torchvision or PIL, `encode_format: npy` pixels with no
decoding at all. PIL and torchvision are imported when first needed."""

import functools
import io
import re

import torch

from .errors import StreamError

IMAGE_EXTS = ("jpg", "jpeg", "png", "webp", "npy")
DECODES = ("pil", "tensor", "raw")


def decode_image(data, ext, mode, key):
    """The image member `data` (extension `ext`) as `mode` asks: "pil" (RGB PIL image), "tensor" (CHW uint8) or
    "raw" (the bytes as they came)."""
    if mode == "raw":
        return data
    if ext == "npy":
        height, width, pixels = npy_image(data, key)
        if mode == "tensor":
            return torch.frombuffer(bytearray(pixels), dtype=torch.uint8).view(height, width, 3).permute(2, 0, 1)
        from PIL import Image

        return Image.frombytes("RGB", (width, height), bytes(pixels))
    if mode == "tensor" and data[:3] == b"\xff\xd8\xff" and (jpeg := jpeg_to_tensor()) is not None:
        return jpeg(data)
    image = pil_rgb(data)
    return to_tensor(image) if mode == "tensor" else image


# The header clipstream writes for an (h, w, 3) uint8 array (what np.save writes, spare spaces included).
_NPY_IMAGE_HEADER = re.compile(
    rb"\{'descr': '\|u1', 'fortran_order': False, 'shape': \((\d{1,6}), (\d{1,6}), 3\), \} *\n"
)


def npy_image(data, key):
    """An `encode_format: npy` image — the server's resized pixels, HWC uint8 RGB, nothing to decode — as
    (height, width, pixel bytes). clipstream's own header is matched directly (np.load takes ~10 × longer: 0.23 ms
    for 256 px); another writer's header is read with numpy's header reader (no pickles, no array allocated before
    its size is checked). Anything but an (h, w, 3) uint8 array is refused: the bytes are untrusted."""
    if data[:8] == b"\x93NUMPY\x01\x00" and len(data) >= 10:
        end = 10 + int.from_bytes(data[8:10], "little")
        match = _NPY_IMAGE_HEADER.fullmatch(data, 10, end)
        if match:
            return _checked(key, int(match[1]), int(match[2]), False, data, end)
    # Another writer's header: numpy reads it, but the array is not made from it before the size is checked (np.load
    # would allocate whatever a header declares).
    from numpy.lib import format as npy_format

    stream = io.BytesIO(data)
    try:
        version = npy_format.read_magic(stream)
        read_header = {(1, 0): npy_format.read_array_header_1_0, (2, 0): npy_format.read_array_header_2_0}.get(version)
        if read_header is None:
            raise ValueError(f"format version {version[0]}.{version[1]}")
        shape, fortran, dtype = read_header(stream)
    except (ValueError, EOFError, OSError, SyntaxError) as err:
        raise StreamError(f"sample {key}: its .npy member is not a numpy array ({err})") from err
    if dtype.str != "|u1" or len(shape) != 3 or shape[2] != 3:
        raise StreamError(
            f"sample {key}: expected an (h, w, 3) uint8 image in its .npy member but found {dtype} {shape}"
        )
    return _checked(key, shape[0], shape[1], fortran, data, stream.tell())


def _checked(key, height, width, fortran, data, offset):
    if height < 1 or width < 1 or len(data) - offset != height * width * 3:
        raise StreamError(
            f"sample {key}: its .npy member holds {len(data) - offset} bytes of pixels, not {height}×{width}×3"
        )
    pixels = memoryview(data)[offset:]
    if fortran:
        import numpy as np

        array = np.frombuffer(pixels, dtype=np.uint8).reshape((height, width, 3), order="F")
        pixels = memoryview(np.ascontiguousarray(array)).cast("B")
    return height, width, pixels


@functools.cache
def jpeg_to_tensor():
    """torchvision's decode_jpeg when torchvision is installed (libjpeg-turbo straight into an RGB tensor: ~14 % less
    client CPU than PIL in bench/torch), else None. Looked up once per process (importing torchvision takes ~0.3 s)."""
    try:
        from torchvision.io import ImageReadMode, decode_jpeg
    except ImportError:
        return None

    def decode(data):
        try:
            return decode_jpeg(torch.frombuffer(bytearray(data), dtype=torch.uint8), mode=ImageReadMode.RGB)
        except RuntimeError:  # what libjpeg-turbo refuses (CMYK, say), PIL may read
            return to_tensor(pil_rgb(data))

    return decode


def pil_rgb(data):
    """Encoded bytes → a decoded RGB PIL image (an RGB image is used as is: convert would copy it)."""
    from PIL import Image

    opened = Image.open(io.BytesIO(data))
    opened.load()
    return opened if opened.mode == "RGB" else opened.convert("RGB")


def to_tensor(image):
    """RGB PIL image → CHW uint8 tensor, a CHW view of the HWC pixels as torchvision's pil_to_tensor returns (the
    collate's stack makes the batch contiguous; a copy here cost ~10 % of the client's CPU)."""
    width, height = image.size
    tensor = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8)
    return tensor.view(height, width, 3).permute(2, 0, 1)
