"""A chat completion (the object, or its chunks) as Anthropic's Message, or its event
stream: ``message_start``, ``ping``, then per content block ``content_block_start``, its
``content_block_delta`` events (``thinking_delta`` then ``signature_delta``, ``text_delta``,
``input_json_delta``) and ``content_block_stop``, then ``message_delta`` (stop reason, the whole usage) and
``message_stop``; a failure after the first event is an ``error`` event (Anthropic's body):
``message_start`` comes before the engine's work (a local model's stream is unstarted), so
what it refuses then (a prompt too long for the context, a full queue) is one too, and a
``ping`` each 15 s keeps a long prefill visibly alive (``serving/keepalive.py``).

Reasoning (``reasoning_content``, or ``reasoning`` as newer vLLM names it: a local model's
reasoning parser, or a reasoning upstream) is a ``thinking`` block before the answer, as
Anthropic's extended thinking: its ``signature`` binds the text to the tenant under the
server's key (``signatures.py``), opaque to the client as Anthropic's; a thinking block sent
back must verify for the tenant that sends it, and is then left out of the context
(``request.py``), so it is never read again.

An answer that ran out of the model's context window, not of the client's ``max_tokens``,
ends with ``model_context_window_exceeded`` (Anthropic's stop reason for it: a larger
``max_tokens`` would not have let it go on, a shorter context would): a chat answer's
``length`` whose prompt and output fill the window (``Room``), with fewer tokens than asked. Chat has no word for the difference (``length`` both), so it is read from the usage;
where the window is not known here (an upstream's), ``length`` stays ``max_tokens``.

Usage: ``input_tokens`` are the prompt's tokens the prefix cache did not hold,
``cache_read_input_tokens`` the ones it did (Anthropic's split: the three input counts add
up to the prompt), ``cache_creation_input_tokens`` 0 (caching here costs nothing extra).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from typing import Any, NamedTuple

from llm_backend.errors import OpenAIError
from llm_backend.json.types import Json
from llm_backend.serving.keepalive import EVERY, Silence

from ..errors import error_body

Event = tuple[str, Json]
Sign = Callable[[str], str]

# Anthropic's keep-alive event: one after ``message_start``, as Anthropic sends it, then one
# each 15 s the model sends nothing.
PING: Event = ("ping", {"type": "ping"})

STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "function_call": "tool_use",
                "content_filter": "refusal"}


class Room(NamedTuple):
    """What an answer could hold: the model's window (None: not known here) and the
    ``max_tokens`` the client asked for."""

    window: int | None = None
    asked: int | None = None

    def ran_out(self, finish_reason: str | None, usage: Json | None) -> bool:
        """Whether an answer ended with ``length`` at the window, short of ``asked``."""
        if finish_reason != "length" or self.window is None or not usage:
            return False
        output = usage.get("completion_tokens") or 0
        return (usage.get("prompt_tokens") or 0) + output >= self.window and (self.asked is None or output < self.asked)


def message_id() -> str:
    return "msg_" + secrets.token_hex(12)


def usage_of(usage: Json | None) -> Json:
    usage = usage or {}
    prompt = usage.get("prompt_tokens") or 0
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    return {
        "input_tokens": prompt - cached,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": cached,
        "output_tokens": usage.get("completion_tokens") or 0,
    }


def _stop(finish_reason: str | None, stop_sequence: Any, room: Room, usage: Json | None) -> tuple[str, str | None]:
    """Anthropic's stop reason; a matched stop sequence when the answer names it (vLLM's
    ``stop_reason``: the string matched), else a stop is the end of the turn; an answer cut
    at the window, ``model_context_window_exceeded`` (``Room``)."""
    if finish_reason == "stop" and isinstance(stop_sequence, str):
        return "stop_sequence", stop_sequence
    if room.ran_out(finish_reason, usage):
        return "model_context_window_exceeded", None
    return STOP_REASONS.get(finish_reason or "stop", "end_turn"), None


def _input(arguments: str | None) -> Json:
    try:
        value = json.loads(arguments or "{}")
    except ValueError:
        value = None
    return value if isinstance(value, dict) else {}


def _reasoning(part: Json) -> str | None:
    return part.get("reasoning_content") or part.get("reasoning")


def message(completion: Json, model: str, sign: Sign, room: Room = Room()) -> Json:
    """The Message of a chat completion (its first choice)."""
    choice = completion["choices"][0]
    answer = choice.get("message") or {}
    content: list[Json] = []
    if thought := _reasoning(answer):
        content.append({"type": "thinking", "thinking": thought, "signature": sign(thought)})
    if answer.get("content"):
        content.append({"type": "text", "text": answer["content"]})
    for call in answer.get("tool_calls") or []:
        function = call.get("function") or {}
        content.append({"type": "tool_use", "id": call["id"], "name": function.get("name"), "input": _input(function.get("arguments"))})
    stop_reason, stop_sequence = _stop(choice.get("finish_reason"), choice.get("stop_reason"), room, completion.get("usage"))
    return {
        "id": message_id(), "type": "message", "role": "assistant", "model": model, "content": content,
        "stop_reason": stop_reason, "stop_sequence": stop_sequence, "usage": usage_of(completion.get("usage")),
    }


class _Blocks:
    """The open content block of a stream, and the events that open and close blocks."""

    def __init__(self, sign: Sign) -> None:
        self.count = 0
        self.open: str | None = None  # "thinking", "text", or "tool:<chat index>"
        self.sign = sign
        self.thought: list[str] = []  # the open thinking block's text, signed when it closes

    def close(self) -> list[Event]:
        if self.open is None:
            return []
        events = []
        if self.open == "thinking":
            events.append(self.delta({"type": "signature_delta", "signature": self.sign("".join(self.thought))}))
            self.thought = []
        self.open = None
        self.count += 1
        return [*events, ("content_block_stop", {"type": "content_block_stop", "index": self.count - 1})]

    def start(self, key: str, block: Json) -> list[Event]:
        events = self.close()
        self.open = key
        events.append(("content_block_start", {"type": "content_block_start", "index": self.count, "content_block": block}))
        return events

    def delta(self, delta: Json) -> Event:
        return "content_block_delta", {"type": "content_block_delta", "index": self.count, "delta": delta}


def _chunk_events(blocks: _Blocks, delta: Json) -> list[Event]:
    events: list[Event] = []
    if thought := _reasoning(delta):
        if blocks.open != "thinking":
            events += blocks.start("thinking", {"type": "thinking", "thinking": "", "signature": ""})
        blocks.thought.append(thought)
        events.append(blocks.delta({"type": "thinking_delta", "thinking": thought}))
    if delta.get("content"):
        if blocks.open != "text":
            events += blocks.start("text", {"type": "text", "text": ""})
        events.append(blocks.delta({"type": "text_delta", "text": delta["content"]}))
    for call in delta.get("tool_calls") or []:
        key = f"tool:{call.get('index', 0)}"
        function = call.get("function") or {}
        if blocks.open != key:
            block: Json = {"type": "tool_use", "id": call.get("id") or "toolu_" + secrets.token_hex(12), "name": function.get("name"), "input": {}}
            events += blocks.start(key, block)
        if function.get("arguments"):
            events.append(blocks.delta({"type": "input_json_delta", "partial_json": function["arguments"]}))
    return events


async def events(
    chunks: AsyncIterator[Json], model: str, sign: Sign, room: Room = Room(), keepalive: float = EVERY
) -> AsyncIterator[Event]:
    """The Message's events of a chat completion's chunks (``stream_options.include_usage``),
    a ``ping`` once ``keepalive`` seconds pass with none sent."""
    start: Json = {"id": message_id(), "type": "message", "role": "assistant", "model": model, "content": [],
             "stop_reason": None, "stop_sequence": None, "usage": usage_of(None)}
    yield "message_start", {"type": "message_start", "message": start}
    yield PING
    blocks = _Blocks(sign)
    finish: tuple[str | None, Any] = (None, None)
    usage: Json | None = None
    try:
        # A long prefill sends nothing: a ping meanwhile (serving/keepalive.py).
        silence = Silence(keepalive)
        async with aclosing(silence.ticking(chunks)) as ticks:
            async for chunk in ticks:
                if chunk is None:
                    yield PING
                    continue
                if chunk.get("usage"):
                    usage = chunk["usage"]
                for choice in chunk.get("choices") or []:
                    if choice.get("index", 0) != 0:
                        continue
                    for event in _chunk_events(blocks, choice.get("delta") or {}):
                        silence.sent()
                        yield event
                    if choice.get("finish_reason"):
                        finish = (choice["finish_reason"], choice.get("stop_reason"))
    except OpenAIError as error:
        yield "error", error_body(error)
        return
    finally:
        close = getattr(chunks, "aclose", None)
        if close is not None:
            await close()
    for event in blocks.close():
        yield event
    stop_reason, stop_sequence = _stop(*finish, room, usage)
    yield "message_delta", {
        "type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence}, "usage": usage_of(usage),
    }
    yield "message_stop", {"type": "message_stop"}
