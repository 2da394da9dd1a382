"""Reads a webdataset tar as it arrives, without seeking: members in order, then samples grouped by key.

Standard library only. A stream that ends before the tar's end-of-archive block raises TruncatedTar: the server
cuts a failed partition without end blocks (docs/streaming.md), so a truncated tar is never taken for a short one.
"""

import re

from .errors import TarFormatError, TruncatedTar

BLOCK = 512
_ZERO = bytes(BLOCK)
# webdataset's split (tariterators.base_plus_ext): the key is everything before the first dot of the basename.
_KEY_EXT = re.compile(r"^((?:.*/|)[^.]+)[.]([^/]*)$")


def read_exact(read, n):
    """Reads n bytes with read(k); fewer only if the stream ends."""
    parts = []
    while n > 0:
        chunk = read(min(n, 1 << 20))
        if not chunk:
            break
        parts.append(chunk)
        n -= len(chunk)
    return b"".join(parts)


def _string(field):
    return field.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _number(field):
    if field[:1] in (b"\x80", b"\xff"):  # GNU base-256
        value = int.from_bytes(field[1:], "big")
        return -value if field[:1] == b"\xff" else value
    text = field.replace(b"\0", b" ").strip()
    try:
        return int(text, 8) if text else 0
    except ValueError:
        raise TarFormatError(f"not a tar header: bad number field {field!r}") from None


def _check_checksum(header):
    stored = _number(header[148:156])
    actual = sum(header[:148]) + 8 * 32 + sum(header[156:])
    if stored != actual:
        raise TarFormatError("not a tar archive: header checksum mismatch")


def _pax_records(data):
    records, pos = {}, 0
    while pos < len(data):
        space = data.index(b" ", pos)
        length = int(data[pos:space])
        key, _, value = data[space + 1 : pos + length - 1].partition(b"=")
        records[key.decode()] = value.decode("utf-8", "surrogateescape")
        pos += length
    return records


def tar_members(read):
    """Yields (name, bytes) for each regular file of the tar that read(n) returns, in order.

    Understands ustar, pax ('x'/'g') and GNU long names ('L'); skips directories and links.
    """
    long_name = None
    pax_path = None
    while True:
        header = read_exact(read, BLOCK)
        if len(header) < BLOCK:
            what = "before the tar's end blocks" if not header else "inside a tar header"
            raise TruncatedTar(f"the stream ended {what} (the partition was cut)")
        if header == _ZERO:
            return  # end of archive; the second zero block and the record padding need not be read
        _check_checksum(header)
        name = _string(header[0:100])
        if header[257:262] == b"ustar":
            prefix = _string(header[345:500])
            if prefix:
                name = prefix + "/" + name
        size = _number(header[124:136])
        typeflag = header[156:157]
        data = read_exact(read, size)
        padding = (-size) % BLOCK
        if len(data) < size or len(read_exact(read, padding)) < padding:
            raise TruncatedTar(f"the stream ended inside tar member {name!r} (the partition was cut)")
        if typeflag == b"L":
            long_name = _string(data)
        elif typeflag == b"x":
            pax_path = _pax_records(data).get("path")
        elif typeflag == b"g":
            pass
        elif typeflag in (b"0", b"\0", b"7"):
            name = pax_path or long_name or name
            long_name = pax_path = None
            yield name, data
        else:
            long_name = pax_path = None


# The member a failed stream ends with (`__error__.json`), before the server cuts the tar.
ERROR_KEY = "__error__"


def split_key(name):
    """'dir/e0p3s17.jpg' → ('dir/e0p3s17', 'jpg'), as webdataset groups members; None for a name without a dot."""
    match = _KEY_EXT.match(name)
    return (match.group(1), match.group(2)) if match else None


def group_samples(members, complete_on="state", required=("jpg", "jpeg", "png", "webp", "npy")):
    """Groups (name, bytes) members into samples {"__key__": key, ext: bytes, …} as webdataset does.

    A sample is complete when the next key starts or the archive ends. clipstream writes `KEY.state` as the last
    member of each sample, so a sample that has its `complete_on` member and an image member is yielded at once,
    without waiting for the next sample's first header (which may be a download away). A member of an already
    yielded key after that breaks the contract and raises TarFormatError.
    """
    current = None
    done = None
    for name, data in members:
        parts = split_key(name)
        if parts is None:
            continue
        key, ext = parts
        if key == ERROR_KEY:  # the server's last word on a failed stream: raised by the reader at once
            yield {"__key__": key, ext: data}
            continue
        if key == done:
            raise TarFormatError(f"tar member {name!r} comes after its sample's .{complete_on} member")
        if current is not None and current["__key__"] != key:
            yield current
            current = None
        if current is None:
            current = {"__key__": key}
        current[ext] = data
        if ext == complete_on and any(r in current for r in required):
            yield current
            done, current = key, None
    if current is not None:
        yield current
