"""Several prompts in one legacy completions request: one engine request per prompt, run
concurrently, answered as one OpenAI object whose choice ``index`` is
``prompt_index * n + choice`` (as OpenAI numbers them)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from ...json.types import Json
from ..base import Objects, Stream

Run = Callable[[Json], Awaitable[Objects]]


def _reindex(data: Json, offset: int) -> Json:
    for choice in data.get("choices", []):
        choice["index"] += offset
    return data


def _add_usage(total: Json | None, usage: Json) -> Json:
    """Usage objects summed, their ``*_details`` objects too."""
    if total is None:
        return dict(usage)
    return {
        key: _add_usage(total.get(key, {}), value) if isinstance(value, dict) else total.get(key, 0) + value
        for key, value in usage.items()
    }


async def fan_out(params: Json, prompts: list, run: Run) -> Objects:
    n = params.get("n", 1)
    answers = await asyncio.gather(*(run({**params, "prompt": prompt}) for prompt in prompts), return_exceptions=True)
    failures = [answer for answer in answers if isinstance(answer, BaseException)]
    # Each prompt's answer is an object, or (``stream``) its chunks: never both kinds.
    objects = [answer for answer in answers if isinstance(answer, dict)]
    streams = [answer for answer in answers if not isinstance(answer, (dict, BaseException))]
    if failures:
        for stream in streams:
            await stream.aclose()
        raise failures[0]
    if not params["stream"]:
        merged = objects[0]
        for offset, answer in enumerate(objects[1:], start=1):
            merged["choices"] += _reindex(answer, offset * n)["choices"]
            merged["usage"] = _add_usage(merged["usage"], answer["usage"])
        return merged
    return _merged_stream(streams, n)


async def _merged_stream(streams: list[Stream[Json]], n: int) -> Stream[Json]:
    """Chunks of all streams as they come, under the first stream's id; one usage chunk at
    the end (if usage was asked for) with the sums."""
    queue: asyncio.Queue[Json | BaseException | None] = asyncio.Queue()  # None: a stream's end
    first_id: dict[str, str] = {}

    async def pump(offset: int, stream: Stream[Json]) -> None:
        try:
            async for chunk in stream:
                await queue.put(_reindex(chunk, offset * n))
        except BaseException as exc:  # surfaced to the consumer below
            await queue.put(exc)
        finally:
            await queue.put(None)

    tasks = [asyncio.create_task(pump(offset, stream)) for offset, stream in enumerate(streams)]
    usage: Json | None = None
    last: Json | None = None
    try:
        remaining = len(tasks)
        while remaining:
            item = await queue.get()
            if item is None:
                remaining -= 1
                continue
            if isinstance(item, BaseException):
                raise item
            first_id.setdefault("id", item["id"])
            item["id"] = first_id["id"]
            if not item["choices"] and "usage" in item:
                usage = _add_usage(usage, item["usage"])
                last = item
                continue
            yield item
        if usage is not None and last is not None:
            yield {**last, "usage": usage}
    finally:
        for task in tasks:
            task.cancel()
        for stream in streams:
            with contextlib.suppress(Exception):
                await stream.aclose()
