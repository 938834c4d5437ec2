"""A stream that says it is alive while it waits on the model (issue #59).

A long prompt's prefill sends nothing: 10,000 tokens of the packaged model took 1.5 to 8
minutes on 2 shared cores, and an answer's chunks only start after it. The SSE layer's
``: ping`` comment every 15 s (http/sse.py) keeps proxies from closing the connection, but a
client's own idle timer counts *events*, and a comment is none: Codex times each ``next()``
of an event-source parser that drops comments (``stream_idle_timeout_ms``, 300 s by
default), so it gave up on a 9k-token turn's first prefill and sent the whole turn again. So
the Responses and Messages lanes wait on their chunks through a ``Silence``, and send their
protocol's own keep-alive event once ``EVERY`` seconds pass with no event sent:

- Responses: ``keepalive`` (``{"type": "keepalive", "sequence_number": n}``), what OpenAI
  itself sends on long streams (undocumented in its reference, but sent: its Node and Java
  SDKs pass it through as a no-op since mid-2026, its Python SDK's stream helper ignores a
  type it does not know; Codex ignores it too, its timer restarted). Not a repeated
  ``response.in_progress``: OpenAI sends that once, and a client that rebuilds the
  Response from each lifecycle event would redraw it for nothing. llama.cpp's server and
  vLLM send nothing while they prefill (llama.cpp streams its prompt's progress on chat
  completions only when asked, ``return_progress``).
- Messages: ``ping``, the event Anthropic's streaming documentation lists for this ("any
  number of ping events"). Anthropic's SDKs drop it before the caller sees it, so Claude
  Code's own watchdog (``CLAUDE_STREAM_IDLE_TIMEOUT_MS``, at least 300 s) still waits for
  a real event; the bytes keep its byte-level watchdog and every proxy on the way content.

15 s by default (the setting ``stream_keepalive_seconds``), as the comments: well inside
every client's idle timeout (the shortest found, 300 s), and rare enough that an answer
flowing at even a token a second never carries one. The cost: a task for each item
awaited, 22 to 50 µs an item on this 2-core machine (idle to a load of 6), under 0.2% of a
stream at 34 tokens/s; a task pumping them all through a queue would cost half that, with
more to get right when the client leaves.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import TypeVar, cast

import anyio

from ..settings import Settings

T = TypeVar("T")

# Seconds with no event sent before the caller sends a keep-alive event (see above): the
# ``stream_keepalive_seconds`` setting's default, for a stream built where no settings are at
# hand (every lane of the service passes the setting).
EVERY: float = Settings.model_fields["stream_keepalive_seconds"].default

_END = object()


async def _next(items: AsyncIterator[T]) -> object:
    try:
        return await anext(items)
    except StopAsyncIteration:
        return _END


class Silence:
    """How long a stream has sent no event, while it waits on ``items``: ``ticking`` gives
    them as they come, with None once ``every`` seconds pass with no event sent (the caller's
    cue to send its keep-alive event); the caller says ``sent()`` when an item made one. An
    item is not an event: the engine's first chunk says only that the prompt was admitted,
    which no lane sends (measured: the keep-alive came at 23.6 s, not 15, behind it)."""

    def __init__(self, every: float = EVERY) -> None:
        self.every = every
        self.since = time.monotonic()

    def sent(self) -> None:
        self.since = time.monotonic()

    async def ticking(self, items: AsyncIterator[T]) -> AsyncGenerator[T | None, None]:
        """``items``; an item's error is raised here. Closing this (the client left) cancels
        the item awaited, which lets go of the engine at once, and closes ``items``: use it
        under ``contextlib.aclosing``."""
        pending: asyncio.Task[object] | None = None
        try:
            while True:
                if pending is None:
                    # Its own task, so that waiting for it can time out without cancelling it.
                    pending = asyncio.ensure_future(_next(items))
                left = self.since + self.every - time.monotonic()
                done, _ = await asyncio.wait((pending,), timeout=max(left, 0))
                if not done:
                    self.sent()  # the keep-alive event, sent by the caller
                    yield None
                    continue
                finished, pending = pending, None
                item = finished.result()
                if item is _END:
                    return
                yield cast(T, item)
        finally:
            # Shielded: the request's own cancellation (the client left) must not cut this
            # short, or the engine would go on with the prompt of a client that is gone.
            with anyio.CancelScope(shield=True):
                if pending is not None:
                    pending.cancel()
                    await asyncio.wait((pending,))
                close = getattr(items, "aclose", None)
                if close is not None:
                    await close()
