"""Images of a chat request to a local vision model (issue #60), checked here, in the API
process, before anything decodes them, and handed to the engine's worker in its form.

A chat ``image_url`` part becomes ``{"type": "image", "data", "sha256", "width", "height",
"format", "detail"}``: the image file's bytes in standard base64, their digest (what the
engine's prefix cache keys an image by, with the tenant), the size its header states, its
format. The worker decodes it with Pillow, re-checking the size (engine/media.py). A model
without a projector never gets here: params.py refuses its image parts by name, as before.

Checked in the order they cost, each past its bound a 400 naming the part
(``messages[1].content[0].image_url``, errors/images.py):

- **count**: the request's images against ``image_max_count``, before anything is read (a
  list of tiny images is as many encodes as a list of large ones);
- **bytes**: a data URL's by the length of its base64 (its decoded size is known from its
  length and padding) against ``image_max_bytes``, before decoding it; a download's as they
  arrive; all of a request's against ``image_max_request_bytes``;
- **pixels**: the header alone, read by Pillow (``Image.open`` parses the header and stops
  before the pixel data; nothing here calls ``load``), against ``image_max_pixels`` and
  ``image_max_side``; only PNG, JPEG, WebP and GIF are tried (OpenAI's four), so no other
  of Pillow's parsers reads a client's bytes. A 20,000 x 20,000 1-bit PNG is 33 KB of zlib
  and 50 MB decoded (1.6 GB as RGBA): refused by its header's size, never inflated.

Where it runs. Decoding megabytes of base64, parsing a header and hashing are sized by the
input: one call off the event loop (``off_loop``) does them for all of a request's images
(a thread's 50 us is nothing beside an image's encode in the engine, seconds). What the loop
does is sized by the number of parts: counting, the data URLs' lengths, the parts put back.

An ``http(s)`` URL is downloaded, when ``image_urls`` is on, under the MCP client's address
rules (image_downloads.py), its bytes counted as they arrive; then checked as a data URL's are.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import io
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Protocol

from ... import errors
from ...json.types import Json
from ...off_loop import off_loop
from ...settings import Settings

# Pillow's names of OpenAI's four formats (``Image.open``'s ``formats``: no other parser runs).
FORMATS = {"PNG": "png", "JPEG": "jpeg", "WEBP": "webp", "GIF": "gif"}
DETAILS = ("auto", "low", "high")
# A data URL's header ("data:image/png;base64,") is short: its comma is looked for this far only.
HEADER_CHARS = 256


@functools.cache
def _pillow() -> ModuleType:
    """Pillow's ``Image``, imported with the first image (a text-only service's start-up, and
    its memory, never pay for it)."""
    from PIL import Image

    # Pillow warns of a large image at open (89 MP); the bound here is lower and refuses it by name.
    warnings.simplefilter("ignore", Image.DecompressionBombWarning)
    return Image


@dataclass(frozen=True)
class ImageLimits:
    """The settings' bounds on a request's images (settings/images.py)."""

    max_bytes: int
    max_request_bytes: int
    max_pixels: int
    max_side: int
    max_count: int
    urls: bool
    url_timeout: float

    @classmethod
    def of(cls, settings: Settings) -> ImageLimits:
        return cls(
            settings.image_max_bytes, settings.image_max_request_bytes, settings.image_max_pixels,
            settings.image_max_side, settings.image_max_count, settings.image_urls, settings.image_url_timeout,
        )


@dataclass
class ImagePart:
    """One ``image_url`` part, where it stands, and what was read of it: its base64 (a data
    URL's, taken off the loop) or its downloaded bytes."""

    message: int
    index: int
    url: str
    detail: str
    base64_at: int = 0  # where a data URL's base64 starts
    downloaded: bytes | None = None

    @property
    def param(self) -> str:
        return f"messages[{self.message}].content[{self.index}].image_url"


def image_parts(messages: Any) -> list[ImagePart]:
    """Every ``image_url`` part of ``messages`` (the spec has checked their shapes)."""
    found = []
    for message_index, message in enumerate(messages if isinstance(messages, list) else ()):
        content = message.get("content") if isinstance(message, dict) else None
        for index, part in enumerate(content if isinstance(content, list) else ()):
            if isinstance(part, dict) and part.get("type") == "image_url":
                image_url = part.get("image_url") or {}
                detail = image_url.get("detail") or "auto"
                found.append(ImagePart(message_index, index, image_url.get("url") or "", detail if detail in DETAILS else "auto"))
    return found


def decoded_size(part: ImagePart) -> int:
    """The bytes a data URL's base64 decodes to, from its length and padding alone."""
    length = len(part.url) - part.base64_at
    return length // 4 * 3 - (part.url.endswith("==") + part.url.endswith("="))


def _data_url(part: ImagePart, limits: ImageLimits) -> None:
    """A data URL's header checked and its size bounded, its base64 not read."""
    comma = part.url.find(",", 0, HEADER_CHARS)
    header = part.url[5:comma].lower() if comma > 0 else ""
    if not header.startswith("image/") or not header.endswith(";base64"):
        raise errors.invalid_image_data_url(part.param, "a data URL without an image MIME type and ';base64'")
    part.base64_at = comma + 1
    if len(part.url) == part.base64_at:
        raise errors.invalid_image_data_url(part.param, "empty base64-encoded bytes")
    if decoded_size(part) > limits.max_bytes:
        raise errors.image_bytes_too_large(part.param, limits.max_bytes)


def counted(messages: Any, limits: ImageLimits) -> list[ImagePart]:
    """The image parts of ``messages``, counted, and each data URL's bytes bounded by its
    length: on the loop, sized by the parts, not their bytes."""
    parts = image_parts(messages)
    if len(parts) > limits.max_count:
        raise errors.too_many_images(parts[limits.max_count].param, limits.max_count)
    total = 0
    for part in parts:
        scheme = part.url[:8].lower()
        if scheme.startswith("data:"):
            _data_url(part, limits)
            total += decoded_size(part)
        elif not scheme.startswith(("http://", "https://")):
            raise errors.invalid_image_data_url(part.param, "neither a data URL nor an http(s) URL")
        elif not limits.urls:
            raise errors.image_urls_off(part.param)
        if total > limits.max_request_bytes:
            raise errors.images_too_large(part.param, limits.max_request_bytes)
    return parts


def worker_image(data: bytes, text: str | None, param: str, detail: str, limits: ImageLimits) -> Json:
    """The worker's form of one image's bytes (``text``: their base64, when they came so),
    refused unless its header is one of the four formats within the pixel bounds."""
    Image = _pillow()
    try:
        with Image.open(io.BytesIO(data), formats=list(FORMATS)) as image:
            width, height = image.size
            kind = FORMATS[image.format or ""]
    except Image.UnidentifiedImageError:
        # No parser of the four took it: one's signature with a broken header, or another
        # format (BMP, TIFF, SVG...), or no image at all.
        raise (errors.unparsable_image(param) if _signed(data) else errors.unsupported_image(param)) from None
    except Image.DecompressionBombError:
        # Past twice Pillow's MAX_IMAGE_PIXELS (179 M), refused by Pillow as it reads the header.
        raise errors.image_too_large(param, f"more than {2 * (Image.MAX_IMAGE_PIXELS or 0)}", limits.max_pixels, limits.max_side) from None
    except (OSError, SyntaxError, ValueError, EOFError, KeyError, IndexError, TypeError):
        # A parser of the four took it and found its header broken.
        raise errors.unparsable_image(param) from None
    if width * height > limits.max_pixels or max(width, height) > limits.max_side:
        raise errors.image_too_large(param, f"{width}x{height}", limits.max_pixels, limits.max_side)
    return {
        "type": "image",
        "data": text if text is not None else base64.b64encode(data).decode("ascii"),
        "sha256": hashlib.sha256(data).hexdigest(),
        "width": width,
        "height": height,
        "format": kind,
        "detail": detail,
    }


def _signed(data: bytes) -> bool:
    """Whether ``data`` begins as one of the four formats does (Pillow's own test of each)."""
    prefix, Image = data[:16], _pillow()
    return any((accept := Image.OPEN[name][1]) is None or bool(accept(prefix)) for name in FORMATS if name in Image.OPEN)


def _read(part: ImagePart, limits: ImageLimits) -> Json:
    if part.downloaded is not None:
        data, part.downloaded = part.downloaded, None  # its base64 replaces it: one copy held, not two
        return worker_image(data, None, part.param, part.detail, limits)
    text = part.url[part.base64_at:]
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise errors.invalid_image_data_url(part.param, "bytes that are not standard base64") from None
    return worker_image(data, text, part.param, part.detail, limits)


def _placed(messages: list[Json], parts: list[ImagePart], limits: ImageLimits) -> list[Json]:
    """``messages`` with each image part in the worker's form (the others as they were)."""
    read = {(part.message, part.index): _read(part, limits) for part in parts}
    placed = list(messages)
    for message_index in {part.message for part in parts}:
        message = messages[message_index]
        content = [read.get((message_index, index), item) for index, item in enumerate(message["content"])]
        placed[message_index] = {**message, "content": content}
    return placed


class Downloads(Protocol):
    """What downloads an image named by URL (image_downloads.ImageDownloads)."""

    async def bytes_of(self, part: ImagePart, limits: ImageLimits, most: int) -> bytes: ...


async def with_images(messages: list[Json], limits: ImageLimits, downloads: Callable[[], Downloads]) -> list[Json]:
    """``messages`` with every ``image_url`` part in the worker's form, checked; ``messages``
    itself when it has none. ``downloads``: what downloads an image named by URL (built on
    first use: image_downloads.py)."""
    parts = counted(messages, limits)
    if not parts:
        return messages
    room = limits.max_request_bytes - sum(decoded_size(part) for part in parts if part.url[:5].lower() == "data:")
    for part in parts:
        if part.base64_at == 0:  # a URL, not a data URL
            if room <= 0:
                raise errors.images_too_large(part.param, limits.max_request_bytes)
            part.downloaded = await downloads().bytes_of(part, limits, min(limits.max_bytes, room))
            room -= len(part.downloaded)
    return await off_loop(True, _placed, messages, parts, limits)


def without_data(messages: list[Json]) -> list[Json]:
    """``messages`` with each image part's bytes left out (its digest kept): what a route key
    hashes, sized by the parts rather than by their images."""
    return [
        {**message, "content": [{k: v for k, v in part.items() if k != "data"} if part.get("type") == "image" else part for part in content]}
        if isinstance(content := message.get("content"), list)
        else message
        for message in messages
    ]
