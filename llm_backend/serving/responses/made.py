"""A response made whole beside its stream (a compaction: ``summary.py``; a warm-up:
``warmup.py``), streamed with OpenAI's events: ``response.created``, ``response.in_progress``,
a ``keepalive`` every ``keepalive`` seconds while it is made, each output item added and done,
``response.completed``; the engine's refusal after ``response.created`` (a history too long for
the context) is ``response.failed``, as every streamed response's is (``events.py``)."""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from typing import Any

from ...backends.base import Stream
from ...errors import OpenAIError
from ...json.types import Json
from ..keepalive import Silence
from . import objects
from .events import failure_code

Event = tuple[str, Json]


async def answered(
    turn: Any, output: Callable[[], Awaitable[tuple[list[Json], Json | None]]], stream: bool, keepalive: float
) -> Json | Stream[Event]:
    """``turn``'s response (``service.Turn``), its output items and chat usage made by
    ``output``: completed, kept as any response is (committed before the client sees it), and
    answered whole or streamed (``_streamed``)."""

    async def made() -> Json:
        items, usage = await output()
        response = objects.finished(turn.skeleton("in_progress"), items, usage, None)
        await turn.save(response)
        return response

    if not stream:
        return await made()
    return _streamed(turn, made(), keepalive)


async def _streamed(turn: Any, made: Awaitable[Json], keepalive: float) -> Stream[Event]:
    """The events of ``made``, ``turn``'s response (``service.Turn``) being made; a failed one
    is kept as any failed response is."""
    numbers = itertools.count()
    started = turn.skeleton("in_progress")

    def event(kind: str, **fields: Any) -> Event:
        return kind, {"type": kind, "sequence_number": next(numbers), **fields}

    yield event("response.created", response=started)
    yield event("response.in_progress", response=started)

    async def one() -> Stream[Json]:
        yield await made

    response: Json = {}
    try:
        async with aclosing(Silence(keepalive).ticking(one())) as waited:
            async for ready in waited:
                if ready is None:
                    yield event("keepalive")
                else:
                    response = ready
    except OpenAIError as failure:
        response = objects.failed(started, [], failure_code(failure), failure.message)
        await turn.save(response)
        yield event("response.failed", response=response)
        return
    for index, item in enumerate(response["output"]):
        yield event("response.output_item.added", output_index=index, item=item)
        yield event("response.output_item.done", output_index=index, item=item)
    yield event("response.completed", response=response)
