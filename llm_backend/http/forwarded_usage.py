"""What a forwarded operation counts: an operation nobody serves here goes to the upstream
verbatim (``forwarding.py``), and before this it was neither limited nor priced - a project
limited to one image a minute made three, at no cost (issue #47). Now each is held to its
project's limits on the model it names, and priced, by what it is:

- **images** (``createImage``, ``createImageEdit``, ``createImageVariation``): the model the
  body names (OpenAI's default, ``dall-e-2``, when none) admitted as a request (requests per
  minute and day) and ``n`` images (default 1) against ``max_images_per_1_minute``; an
  answered request counts its images in the usage (family ``images``), priced per image
  (``serving/metering/prices.py``). Its answer's bytes are not read (images of several MB
  each);
- **Responses** forwarded as unserved (``createResponse``, ``Compactconversation``: a pure
  gateway forwards the stateful families): the model admitted as a request and named for
  the meter, which reads the answer's ``usage`` as it reads any relayed answer's
  (``metrics.py``: the JSON answer, or the stream's ``response.completed``); under a hard
  spend limit it holds its ``max_output_tokens`` (else the model's room) and its body's
  bytes as its input tokens (``serving/metering/holds.py``);
- **speech** forwarded by its model (``routed_by_model``: an upstream's voice): its input's
  characters, as a local model's speech counts them.

The body is read here only for those operations, as the upstream reads it (JSON, or a form's
text fields without its files, in bounded memory whatever its size). A limit this service
cannot count for an operation is refused when it is set (``serving/admin/rate_limits.py``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from python_multipart.multipart import parse_options_header
from starlette.types import Scope

from .. import errors
from ..auth import ANONYMOUS
from ..backends.base import StreamedBody
from ..json.scan import SLICE
from ..serving.form_fields import TextFields, Unreadable
from ..serving.request_ids import json_events
from ..storage.usage import AUDIO_SPEECHES, IMAGES
from . import context
from .project_limits import admit_model

# OpenAI's model when an image request names none (its API reference: dall-e-2 for each).
IMAGE_OPERATIONS = {"createImage": "dall-e-2", "createImageEdit": "dall-e-2", "createImageVariation": "dall-e-2"}
RESPONSE_OPERATIONS = frozenset({"createResponse", "Compactconversation"})
MAX_IMAGES = 10  # OpenAI's bound on ``n``: a larger one is the upstream's 400


@dataclass(frozen=True)
class Counted:
    """A forwarded request admitted: its model, and the images its answer counts."""

    model: str
    images: int = 0


async def admitted(scope: Scope, content: bytes | StreamedBody | None) -> Counted | None:
    """The unserved request being forwarded, held to its project's limits on its model
    (429 past one); None for an operation that counts nothing here."""
    operation = context.record().operation_id
    if operation not in IMAGE_OPERATIONS and operation not in RESPONSE_OPERATIONS:
        return None
    try:
        fields = await _fields(content, scope["headers"], images=operation in IMAGE_OPERATIONS)
    except Unreadable as error:
        if context.caller().owner == ANONYMOUS:
            return None  # no project, no limits: the upstream reads it as it can
        raise errors.unreadable_body(str(error)) from None
    model = fields.get("model") or IMAGE_OPERATIONS.get(operation)
    if not isinstance(model, str):
        return None  # the upstream's 400
    context.record().model = model  # for the metrics: labels, and the usage of its answer
    if operation in IMAGE_OPERATIONS:
        images = _images(fields.get("n"))
        await admit_model(model, images=images)
        return Counted(model, images)
    # A Response holds its cap (or the model's room) and its body's bytes as its input.
    cap = fields.get("max_output_tokens")
    held = {"max_output_tokens": int(cap)} if isinstance(cap, (int, float)) and not isinstance(cap, bool) else {}
    await admit_model(model, held=held, unread=_size(content))
    return Counted(model)


def answered(counted: Counted | None, status: int) -> None:
    """An image request the upstream answered: its images into the usage (and so the spend)."""
    if counted is None or not counted.images or not 200 <= status < 300:
        return
    context.record().tokens_counted = True  # counted here: its answer is not read for usage
    metrics = context.current().metrics
    if metrics is not None:
        metrics.count_tokens(counted.model, {"images": counted.images}, family=IMAGES)


def answered_by_model(operation_id: str, model: str, body: Any, status: int) -> None:
    """A served operation forwarded to its model's upstream (``routed_by_model``) that no
    answer's ``usage`` reports: speech, by its input's characters."""
    if operation_id != "createSpeech" or not 200 <= status < 300 or not isinstance(body, dict):
        return
    spoken = body.get("input")
    if isinstance(spoken, str):
        context.record().tokens_counted = True
        metrics = context.current().metrics
        if metrics is not None:
            metrics.count_tokens(model, {"characters": len(spoken)}, family=AUDIO_SPEECHES)


def _size(content: bytes | StreamedBody | None) -> int:
    if isinstance(content, StreamedBody):
        return content.size
    return len(content or b"")


def _images(n: Any) -> int:
    if isinstance(n, str) and n.strip().isdigit():
        n = int(n)
    return n if isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= MAX_IMAGES else 1


async def _chunks(content: bytes | StreamedBody | None) -> AsyncIterator[bytes]:
    """The body in slices of at most ``SLICE`` bytes, the loop given a turn between them: a
    Response without ``max_output_tokens`` is read to its end here, on the event loop."""
    pieces = content.chunks() if isinstance(content, StreamedBody) else _once(content)
    async for chunk in pieces:
        for start in range(0, len(chunk), SLICE):
            yield chunk[start : start + SLICE]
            await asyncio.sleep(0)


async def _once(content: bytes | None) -> AsyncIterator[bytes]:
    if content:
        yield content


async def _fields(content: bytes | StreamedBody | None, headers: list[tuple[bytes, bytes]], images: bool) -> dict[str, Any]:
    """The body's top-level ``model`` (and ``n`` for ``images``): a JSON body's, or a form's."""
    if not content:
        return {}
    found = dict(headers)
    if found.get(b"content-encoding", b"identity").strip().lower() != b"identity":
        raise Unreadable("a body with a Content-Encoding")
    kind, _ = parse_options_header(found.get(b"content-type", b""))
    wanted = {"model", "n"} if images else {"model", "max_output_tokens"}
    if kind == b"multipart/form-data":
        form = TextFields(found[b"content-type"])
        async for chunk in _chunks(content):
            form.write(chunk)
        return {name: value for name, value in form.finish() if name in wanted}
    return await _json_fields(_chunks(content), wanted)


async def _json_fields(chunks: AsyncIterator[bytes], wanted: set[str]) -> dict[str, Any]:
    """``wanted`` top-level scalars of a JSON object, read as it streams, to its end: a key
    twice anywhere in it is refused (``json_events``), so that what is metered here is what
    the upstream reads, whichever of two values its parser would keep (issue #56)."""
    fields: dict[str, Any] = {}
    async for prefix, event, value in json_events(chunks):  # bounded as the guard reads it
        if prefix in wanted and event in ("string", "number"):
            fields[prefix] = value
    return fields
