"""A Messages request for a model of an Anthropic upstream (``api: anthropic``), passed
through unchanged (``backend.py``) and metered from its answer: the
same admission as any request went before (key, project limits, spend hold:
``http/forwarding.routed_by_model``), and the tokens the upstream reports go into the same
count as chat's (``counted``: metrics, usage, limits, spend).

What is counted is Anthropic's usage: ``input_tokens + cache_read_input_tokens +
cache_creation_input_tokens`` as the prompt (Anthropic's ``input_tokens`` leaves out what
was read from or written to its cache; OpenAI's ``prompt_tokens`` holds both), the cache
reads as its cached tokens, ``output_tokens`` as the completion. A whole Message's
``usage``; a stream's ``message_start`` (input) and ``message_delta`` (output; its counts
are cumulative, and may repeat or raise the input's): each counted as it passes, only what
it adds to what was counted, so a stream the client leaves midway is counted as far as it
went. ``count_tokens`` is Anthropic's free count: nothing to meter.

The bytes pass as they came. Only events that carry ``"usage"`` are parsed (each bounded by
``json_text.loads``' scan; a large event searched for it beside the loop). A whole Message
that arrives without its length is read once it has passed: whole when short, else from its
end, where Anthropic writes its ``usage`` (``json/tail.Kept``: at most its last 320 KiB
kept, whatever its size); one whose usage is elsewhere counts as none.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import replace
from typing import Any, Protocol

from llm_backend.backends.base import Relayed
from llm_backend.backends.upstream.event_frames import EventFrames, holds
from llm_backend.errors import OpenAIError
from llm_backend.json.tail import Kept
from llm_backend.json.text import LARGE_BODY, loads
from llm_backend.json.types import Json
from llm_backend.off_loop import off_loop

Counted = Callable[[Json], None]
CREATE = "messagesCreate"
USAGE = b'"usage"'
FIELDS = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens", "output_tokens")


class Messages(Protocol):
    """An Anthropic upstream's backend, as this module uses it."""

    async def messages(self, operation_id: str, query: bytes, content: bytes) -> Relayed: ...


async def passed(backend: Messages, operation_id: str, query: bytes, content: bytes, counted: Counted) -> Relayed:
    """The upstream's answer to the request, relayed, its usage counted as it passes."""
    answer = await backend.messages(operation_id, query, content)
    if operation_id != CREATE or not 200 <= answer.status < 300:
        return answer  # an error, or a count: nothing generated
    meter = Meter(counted)
    if answer.content is not None:
        meter.heard(_usage(_parsed(answer.content)))
        return answer
    assert answer.chunks is not None
    streamed = any(name == b"content-type" and value.startswith(b"text/event-stream") for name, value in answer.headers)
    return replace(answer, chunks=(meter.events if streamed else meter.message)(answer.chunks))


class Meter:
    """One answer's usage, counted as it becomes known: the highest of each count seen so
    far, and only what it adds to what was counted told to ``counted``."""

    def __init__(self, counted: Counted) -> None:
        self.counted = counted
        self.seen = dict.fromkeys(FIELDS, 0)
        self.told = (0, 0, 0)  # prompt, cached, completion

    def heard(self, usage: Any) -> None:
        if not isinstance(usage, dict):
            return
        for field in FIELDS:
            value = usage.get(field)
            if isinstance(value, int) and not isinstance(value, bool) and value > self.seen[field]:
                self.seen[field] = value
        seen = self.seen
        now = (
            seen["input_tokens"] + seen["cache_read_input_tokens"] + seen["cache_creation_input_tokens"],
            seen["cache_read_input_tokens"],
            seen["output_tokens"],
        )
        prompt, cached, completion = (new - old for new, old in zip(now, self.told))
        if prompt or completion:
            self.told = now
            self.counted({"prompt_tokens": prompt, "completion_tokens": completion, "prompt_tokens_details": {"cached_tokens": cached}})

    async def events(self, chunks: AsyncIterator[bytes]) -> AsyncGenerator[bytes, None]:
        """A stream's bytes as they come; each event that carries usage read when it ends
        (framed across the network's chunks: an upstream may split an event in two)."""
        frames = EventFrames()  # bounded where the relay framed the stream (event_frames.py)
        async for chunk in chunks:
            # Counted before it is sent: a client gone after it was sent it. A large event is
            # searched beside the loop (an event may be as long as the upstream's read limit).
            events = frames.feed(chunk)
            if len(events) > LARGE_BODY or USAGE in events:
                await self._events(events)
            yield chunk
        await self._events(frames.rest())  # a last event without its blank line

    async def _events(self, events: bytes) -> None:
        for usage in await off_loop(len(events) > LARGE_BODY, _usages, events):
            self.heard(usage)

    async def message(self, chunks: AsyncIterator[bytes]) -> AsyncGenerator[bytes, None]:
        """A whole Message that came without its length (or past ``relay.WHOLE_BODY_MAX``):
        its bytes as they come, its ``usage`` read once it has passed: from its end when
        long, where Anthropic writes it (``json/tail.Kept``)."""
        kept = Kept()
        async for chunk in chunks:
            kept.extend(chunk)
            yield chunk
        self.heard(kept.member("usage"))


def _usages(events: bytes) -> list[Json | None]:
    """The usage each ``data:`` line of ``events`` carries (message_start's, message_delta's),
    its lines found and searched in place, a slice at a time (``holds``)."""
    found: list[Json | None] = []
    if not holds(events, USAGE):
        return found
    line = 0
    while line < len(events):
        stop = events.find(b"\n", line)
        stop = len(events) if stop < 0 else stop
        if events.startswith(b"data:", line, stop) and holds(events, USAGE, line, stop):
            data = _parsed(events[line + 5 : stop])
            if isinstance(data, dict):
                found.append(_usage(data.get("message")) or _usage(data))
        line = stop + 1
    return found


def _parsed(data: bytes) -> Any:
    try:
        return loads(data, unique_keys=False)  # scanned first: depth and values bounded; the upstream's answer as it came
    except (ValueError, OpenAIError):
        return None


def _usage(message: Any) -> Json | None:
    return message.get("usage") if isinstance(message, dict) and isinstance(message.get("usage"), dict) else None
