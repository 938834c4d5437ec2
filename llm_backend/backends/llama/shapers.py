"""Engine events back to OpenAI objects: whole answers, streamed chunks, embeddings.

The engine speaks in events (``prompt``, ``echo``, ``delta``, ``usage``, ``result``; see
worker.py); a shaper gathers or relays them under the id, model name and fingerprint the
client sees. With tools offered, a chat answer's text becomes ``tool_calls``, read in the
model's own format (tool_formats/; gpt-oss's channels are read with or without tools); a
reasoning model's reasoning becomes ``reasoning_content`` (reasoning/), its tokens counted
as ``reasoning_tokens``.
"""

from __future__ import annotations

import base64
import struct
import time
import uuid
from collections.abc import AsyncIterator
from typing import cast

from ...json.types import Json
from ..base import Stream
from .reasoning.stream import answer_parser
from .tool_formats import named
from .tool_formats.base import Parser
from .tool_formats.deltas import ToolCallStream, assembled


class _Choices:
    """What the engine said for each choice, gathered for a non-streamed answer."""

    def __init__(self, n: int) -> None:
        self.text = [""] * n
        self.logprobs: list[list[Json]] = [[] for _ in range(n)]
        self.finish_reason: list[str | None] = [None] * n
        self.usage: Json = {}

    @classmethod
    def of(cls, events: list[Json], n: int) -> "_Choices":
        gathered = cls(n)
        for event in events:
            gathered.add(event)
        return gathered

    def add(self, event: Json) -> None:
        if event["event"] == "echo":
            # Every choice starts with the prompt (completions' echo).
            self.text = [event["text"] + text for text in self.text]
            self.logprobs = [(event["logprobs"] or []) + entries for entries in self.logprobs]
        elif event["event"] == "delta":
            index = event["index"]
            self.text[index] += event["text"]
            self.logprobs[index] += event.get("logprobs", [])
            self.finish_reason[index] = event.get("finish_reason") or self.finish_reason[index]
        elif event["event"] == "usage":
            self.usage = usage(event)


def usage(event: Json, reasoning_tokens: int | None = None) -> Json:
    """``reasoning_tokens``: counted for a reasoning model (None for others)."""
    prompt, completion = event["prompt_tokens"], event["completion_tokens"]
    details = {"reasoning_tokens": reasoning_tokens} if reasoning_tokens is not None else {}
    if "accepted_prediction_tokens" in event:
        details.update(
            accepted_prediction_tokens=event["accepted_prediction_tokens"],
            rejected_prediction_tokens=event["rejected_prediction_tokens"],
        )
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        # As OpenAI reports its prompt caching: prompt tokens whose KV was already computed.
        "prompt_tokens_details": {"cached_tokens": event.get("cached_tokens", 0)},
        # With a prediction (OpenAI's accounting, engine/requests.py): accepted + rejected
        # are the prediction's tokens, and completion_tokens counts the rejected ones too
        # (OpenAI bills them).
        **({"completion_tokens_details": details} if details else {}),
    }


class _Reader:
    """One choice's text read as it comes (tool calls, reasoning), its reasoning tokens
    counted as vLLM counts them: the tokens inside the block, its tags not included. The
    engine says how many tokens each delta's text is (one, but for drafts accepted together
    or text held back): a delta read inside the block from before to after it is all
    reasoning; one that crosses a tag, its tokens but the tag's."""

    def __init__(self, stream: ToolCallStream) -> None:
        self.stream = stream
        self.reasoning_tokens = 0

    def feed(self, event: Json) -> list[Json]:
        tokens = event.get("tokens", 1 if event["text"] else 0)
        before = self.stream.parser.thinking
        deltas = self.stream.feed(event["text"])
        if before and self.stream.parser.thinking:
            self.reasoning_tokens += tokens
        elif any("reasoning_content" in delta for delta in deltas):
            self.reasoning_tokens += max(tokens - 1, 0)
        return deltas


class ChatShaper:
    """Engine events -> OpenAI chat objects under the model id the client asked for."""

    object_name = "chat.completion"
    chunk_object_name = "chat.completion.chunk"
    id_prefix = "chatcmpl-"

    def __init__(self, model_id: str, fingerprint: str, params: Json) -> None:
        self.id = self.id_prefix + uuid.uuid4().hex
        self.model_id = model_id
        self.fingerprint = fingerprint
        self.created = int(time.time())
        self.n = params["n"]
        self.logprobs = params["logprobs"]
        self.include_usage = params["include_usage"]
        self.tool_names = set(params.get("tool_names") or [])
        self.tools = params.get("tools")  # their schemas type the XML formats' values (tool_formats/xml_calls.py)
        self.tool_format = named(params.get("tool_format"))
        self.reasoning_format = params.get("reasoning_format")  # the model's (reasoning/), if any
        # Whether answers are read as the format's text (tool calls, channels, reasoning) or
        # taken as they are: a reasoning family whose own tool format reads its channels
        # (gpt-oss) reads nothing under another (``tool_format: convention``).
        self.reads_tools = bool(self.tool_names) or self.tool_format.always
        self.reads_format = self.reads_tools or answer_parser(self.reasoning_format, None, None) is not None

    def _readers(self, start: str | None) -> list[_Reader]:
        """A reader per choice; ``start``: where the engine says the answers start (inside
        a reasoning block the prompt opened, or not)."""
        readers = []
        for _ in range(self.n):
            tools = self.tool_format.typed_parser(self.tool_names, self.tools) if self.reads_tools else None
            parser = answer_parser(self.reasoning_format, start, tools) or tools
            # Asked only when ``reads_format``: the tools' parser, or the reasoning family's.
            readers.append(_Reader(ToolCallStream(cast(Parser, parser))))
        return readers

    def _usage(self, event: Json, readers: list[_Reader] | None) -> Json:
        counted = sum(reader.reasoning_tokens for reader in readers) if readers and self.reasoning_format else None
        return usage(event, counted)

    def _envelope(self, data: Json, object_name: str) -> Json:
        return {
            "id": self.id,
            "object": object_name,
            "created": self.created,
            "model": self.model_id,
            "system_fingerprint": self.fingerprint,
            **data,
        }

    def _logprobs(self, entries: list[Json]) -> Json | None:
        return {"content": entries, "refusal": None} if self.logprobs else None

    def completion(self, events: list[Json]) -> Json:
        gathered = _Choices.of(events, self.n)
        choices: list[Json] = [
            {
                "index": index,
                "message": {"role": "assistant", "content": gathered.text[index], "refusal": None},
                "logprobs": self._logprobs(gathered.logprobs[index]),
                "finish_reason": gathered.finish_reason[index],
            }
            for index in range(self.n)
        ]
        if self.reads_format:
            start = next((event.get("reasoning_start") for event in events if event["event"] == "prompt"), None)
            readers = self._readers(start)
            deltas: list[list[Json]] = [[] for _ in range(self.n)]
            for event in events:
                if event["event"] == "delta":
                    deltas[event["index"]] += readers[event["index"]].feed(event)
                elif event["event"] == "usage":
                    gathered.usage = self._usage(event, readers)
            for choice, reader, said in zip(choices, readers, deltas):
                content, calls, reasoning = assembled(said + reader.stream.finish())
                choice["message"]["content"] = content
                if reasoning:
                    # DeepSeek's and llama.cpp's name, and vLLM's newer one.
                    choice["message"]["reasoning_content"] = choice["message"]["reasoning"] = reasoning
                if calls:
                    choice["message"]["tool_calls"] = calls
                    # "length" stays: a call cut short must not look complete (as streamed).
                    if choice["finish_reason"] == "stop":
                        choice["finish_reason"] = "tool_calls"
        return self._envelope({"choices": choices, "usage": gathered.usage}, self.object_name)

    def _chunk(self, index: int, delta: Json, entries: list[Json] | None, finish_reason: str | None) -> Json:
        choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        if entries is not None:
            choice["logprobs"] = self._logprobs(entries)
        return self._envelope({"choices": [choice]}, self.chunk_object_name)

    async def chunks(self, events: AsyncIterator[Json]) -> Stream[Json]:
        # With tools offered (or a reasoning model), each choice's text becomes content,
        # reasoning or tool-call deltas.
        calls: list[_Reader] | None = None
        async for event in events:
            kind = event["event"]
            if kind == "prompt":
                calls = self._readers(event.get("reasoning_start")) if self.reads_format else None
                for index in range(self.n):
                    yield self._chunk(index, {"role": "assistant", "content": ""}, None, None)
            elif kind == "delta":
                index, reason = event["index"], event.get("finish_reason")
                if calls is None and self.reads_format:
                    calls = self._readers(None)  # no prompt event came before it
                if calls is None:
                    entries = event.get("logprobs") if self.logprobs else None
                    if event["text"] or entries:
                        yield self._chunk(index, {"content": event["text"]}, entries, None)
                else:
                    stream = calls[index].stream
                    for delta in calls[index].feed(event) + (stream.finish() if reason else []):
                        yield self._chunk(index, delta, None, None)
                    if reason == "stop" and stream.called:
                        reason = "tool_calls"
                if reason:
                    yield self._chunk(index, {}, None, reason)
            elif kind == "usage" and self.include_usage:
                yield self._envelope({"choices": [], "usage": self._usage(event, calls)}, self.chunk_object_name)


class CompletionShaper(ChatShaper):
    object_name = chunk_object_name = "text_completion"
    id_prefix = "cmpl-"

    def _logprobs(self, entries: list[Json], offset: int = 0) -> Json | None:
        if not self.logprobs:
            return None
        offsets = []
        for entry in entries:
            offsets.append(offset)
            offset += len(bytes(entry["bytes"]).decode("utf-8", errors="ignore"))
        return {
            "tokens": [entry["token"] for entry in entries],
            "token_logprobs": [entry["logprob"] for entry in entries],
            "top_logprobs": [
                None if entry["top_logprobs"] is None else {top["token"]: top["logprob"] for top in entry["top_logprobs"]}
                for entry in entries
            ],
            "text_offset": offsets,
        }

    def completion(self, events: list[Json]) -> Json:
        gathered = _Choices.of(events, self.n)
        choices = [
            {
                "index": index,
                "text": gathered.text[index],
                "logprobs": self._logprobs(gathered.logprobs[index]),
                "finish_reason": gathered.finish_reason[index],
            }
            for index in range(self.n)
        ]
        return self._envelope({"choices": choices, "usage": gathered.usage}, self.object_name)

    async def chunks(self, events: AsyncIterator[Json]) -> Stream[Json]:
        offsets = [0] * self.n
        async for event in events:
            kind = event["event"]
            if kind == "echo":
                for index in range(self.n):
                    choice = {
                        "index": index,
                        "text": event["text"],
                        "logprobs": self._logprobs(event["logprobs"] or [], 0),
                        "finish_reason": None,
                    }
                    offsets[index] += len(event["text"])
                    yield self._envelope({"choices": [choice]}, self.object_name)
            elif kind == "delta":
                index = event["index"]
                choice = {
                    "index": index,
                    "text": event["text"],
                    "logprobs": self._logprobs(event.get("logprobs", []), offsets[index]),
                    "finish_reason": event.get("finish_reason"),
                }
                offsets[index] += len(event["text"])
                yield self._envelope({"choices": [choice]}, self.object_name)
            elif kind == "usage" and self.include_usage:
                yield self._envelope({"choices": [], "usage": usage(event)}, self.object_name)


def embedding_response(model_id: str, result: Json, encoding_format: str) -> Json:
    def encode(vector: list[float]) -> list[float] | str:
        if encoding_format == "base64":
            return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
        return vector

    n_tokens = result["n_tokens"]
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": index, "embedding": encode(vector)}
            for index, vector in enumerate(result["vectors"])
        ],
        "model": model_id,
        "usage": {"prompt_tokens": n_tokens, "total_tokens": n_tokens},
    }
