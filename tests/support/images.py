"""Images made for the tests of images in chat requests (issue #60): real files, made here."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image


def png(width: int = 1, height: int = 1, mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, (width, height)).save(out, "PNG")
    return out.getvalue()


def bomb_png(side: int) -> bytes:
    """A real PNG of ``side`` x ``side`` 1-bit pixels, all zero: its IDAT is zlib at level 9,
    written row by row here (Pillow would hold the whole image to save it)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = bytes(1 + (side + 7) // 8)  # filter byte 0, then the row's bits
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)  # 1 bit, greyscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def webp_claiming(side: int) -> bytes:
    """A real 1x1 lossless WebP whose VP8L header is made to say ``side`` x ``side``: Pillow's
    open hands it to libwebp's animation decoder, which allocates a canvas of that size."""
    out = io.BytesIO()
    Image.new("RGB", (1, 1)).save(out, "WEBP", lossless=True)
    data = bytearray(out.getvalue())
    at = data.find(b"VP8L") + 9  # past the chunk's size and the 0x2f signature byte
    (bits,) = struct.unpack("<I", data[at:at + 4])
    bits = (bits & ~((1 << 28) - 1)) | (side - 1) | ((side - 1) << 14)  # 14 bits each: width - 1, height - 1
    data[at:at + 4] = struct.pack("<I", bits)
    return bytes(data)
