"""One response of a Realtime conversation: the chat model's answer streamed as items, as
text or, sentence by sentence as the model writes it, as speech (``speaker.py``); a request
of the session's key through its ``Gate`` (checked again, rate-limited, held to its
project's per-model limits and hosted tools, observed, logged).

A function call is done - ``response.function_call_arguments.done`` and its
``output_item.done`` ``completed`` - as soon as its arguments are complete (they read as a
whole JSON object, or the model began another call), not when the whole response ends: a
client runs it at once, and a later call cut by ``max_output_tokens`` leaves it completed
(issue #39: the Agents SDK never ran a finished call marked ``incomplete`` so).

A call of an MCP tool (``mcp_tools.py``) is an ``mcp_call`` item (``mcp_call.in_progress``,
``mcp_call_arguments.delta``… ``.done``), run once the answer is over, in order
(``mcp_call.completed`` / ``.failed``, ``output_item.done`` with its output); its
``conversation.item.done`` comes after ``response.done``, so that a client asking then for
the next response (the Agents SDK does) finds none running. Or an ``mcp_approval_request``
item, sent whole once recorded.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Sequence
from typing import Any, Protocol, cast

from ...backends.base import Stream
from ...backends.capabilities import CHAT
from ...errors import OpenAIError, answered
from ...json.types import Json
from ..mcp.servers import McpServer
from ..responses.request import chat_tool_choice, chat_tools
from .events import RESPONSE, Gate, error_event, event_id, new_id, snapshot
from .mcp_tools import Session as McpSession
from .mcp_tools import SessionMcp, not_run
from .speaker import Speaker

PCM_BYTES_PER_MS = 48  # 24 kHz, 16-bit mono: what the audio deltas carry
# A response's status as the metrics count it (a cancelled one as a client gone).
STATUS = {"completed": 200, "incomplete": 200, "cancelled": 499, "failed": 500}
NOT_RUN_WHY = {"cancelled": "the response was cancelled", "failed": "the response failed"}
ARGUMENT_DELTAS = {"function_call": "response.function_call_arguments.delta", "mcp_call": "response.mcp_call_arguments.delta"}


class Session(McpSession, Protocol):
    """What a response reads of its session (conversation.py's ``ConversationSession``),
    named here so the session imports this module and not the other way round."""

    gate: Gate
    model: str
    conversation_id: str
    cancel_reason: str  # why a cancelled response stopped ("" while the session closes)
    audio_ms: dict[str, int]
    mcp: SessionMcp


class Response:
    def __init__(
        self,
        session: Session,
        config: Json,
        metadata: Any,
        given: tuple[str, str] = ("session", "session"),
        servers: Sequence[McpServer] = (),
    ) -> None:
        self.session = session
        self.config = config
        # Where its tools and its tool choice were given: the session, or the response.create.
        self.tools_from, self.choice_from = given
        self.servers = list(servers)  # its mcp tools (mcp_tools.checked_servers)
        self.mcp: Any = None  # their run (serving/mcp/run.McpRun), once listed
        self.to_run: list[Json] = []  # MCP calls whose arguments are whole, run once the answer is over
        self.running: Json | None = None  # the MCP call running
        self.ran: list[Json] = []  # MCP call items whose conversation.item.done comes after response.done
        self.id = new_id("resp")
        self.audio = config["output_modalities"] == ["audio"]
        self.object: Json = {
            "object": "realtime.response",
            "id": self.id,
            "status": "in_progress",
            "output": [],
            "conversation_id": session.conversation_id,
            "output_modalities": list(config["output_modalities"]),
            "max_output_tokens": config["max_output_tokens"],
            "audio": {"output": {"format": {"type": "audio/pcm", "rate": 24_000}, "voice": config["voice"]}},
        }
        if metadata is not None:
            self.object["metadata"] = metadata
        self.message: Json | None = None  # the assistant message item being said
        self.speaker: Speaker | None = None
        self.status = "in_progress"
        self.whole_calls: set[str] = set()  # the calls whose arguments are complete (done)

    async def send(self, event: Json) -> None:
        await self.session.send({"event_id": event_id(), **event})

    async def _prepare(self) -> Json:
        """The chat request, once the approved calls have run and the MCP servers are listed
        (a listing's failure, a forced tool that is not offered: refused before it begins)."""
        session = self.session
        await session.mcp.idle()
        config = self.config
        body = {"tools": config["tools"], "tool_choice": config["tool_choice"]}
        catalog = None
        if self.servers:
            functions = [tool["name"] for tool in config["tools"] if tool.get("type") == "function"]
            catalog = await session.mcp.catalog(self.servers, functions)
            self.mcp = session.mcp.run_of(catalog, self.id)
            body = catalog.chat_body(body, f"{self.choice_from}.")
        request: Json = {
            "model": self.session.model,
            "messages": self.session.items.messages(config["instructions"], catalog),
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        choice, offered = chat_tool_choice(body["tool_choice"], chat_tools(body["tools"]))
        if offered:
            request["tools"], request["tool_choice"] = offered, choice
        if isinstance(config["max_output_tokens"], int):
            request["max_tokens"] = config["max_output_tokens"]
        return request

    async def run(self) -> None:
        try:
            tools = {"tools": self.config["tools"]}  # its project's hosted tools checked again: they may be off now
            async with self.session.gate.admit(RESPONSE, self.session.model, tools, f"{self.tools_from}.") as admission:
                try:
                    request = await self._prepare()
                except OpenAIError as error:
                    admission.finished(error.status)
                    raise
                await self._run(request)
                admission.finished(STATUS[self.object["status"]], self.object.get("usage"))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # refused before it began: a revoked key, a rate limit, an MCP server not listed
            await self.session.send(error_event(answered(exc)))
            return
        await self.send({"type": "rate_limits.updated", "rate_limits": admission.rate_limits})
        for item in self.ran:  # last: the next response may be asked for now
            await self.send({"type": "conversation.item.done", "previous_item_id": None, "item": snapshot(item)})

    async def _run(self, request: Json) -> None:
        session = self.session
        await self.send({"type": "response.created", "response": dict(self.object, output=[])})
        usage: Json = {}
        calls: dict[int, Json] = {}
        status, details = "completed", None
        try:
            try:
                backend = session.services.registry.serving(session.model, CHAT)
                # Asked to stream (``stream``: True): its chunks, never the object.
                chunks = cast(Stream[Json], await backend.chat_completion_objects(session.model, request))
                async for chunk in chunks:
                    if chunk.get("usage"):
                        usage = chunk["usage"]
                    for choice in chunk.get("choices") or []:
                        delta = choice.get("delta") or {}
                        if delta.get("content"):
                            await self._say(delta["content"])
                        for call in delta.get("tool_calls") or []:
                            await self._call(calls, call)
                        if choice.get("finish_reason") == "length":
                            status, details = "incomplete", {"type": "incomplete", "reason": "max_output_tokens"}
                if self.speaker is not None:
                    await self.speaker.finish()
            except asyncio.CancelledError:
                if not session.cancel_reason:
                    raise  # the session is closing: nothing more is sent
                status, details = "cancelled", {"type": "cancelled", "reason": session.cancel_reason}
            except Exception as exc:
                status, details = "failed", {"type": "failed", "error": answered(exc).body()["error"]}
            self.status = status
            try:
                await self._finish_message()
                for call in calls.values():
                    if call["id"] not in self.whole_calls:
                        await self._finish_call(call, "completed" if status == "completed" else "incomplete")
                if status in ("completed", "incomplete"):
                    await self._run_calls()
            except asyncio.CancelledError:
                if not session.cancel_reason:
                    raise
                status, details = "cancelled", {"type": "cancelled", "reason": session.cancel_reason}
            except Exception as exc:
                status, details = "failed", {"type": "failed", "error": answered(exc).body()["error"]}
            self.status = status
            for call in self.to_run:  # never run, or cut while it ran
                not_run(call, "the response was cancelled while it ran" if call is self.running else NOT_RUN_WHY[status])
                await self._item_done(call, None, later=True)
        finally:
            if self.speaker is not None:
                await self.speaker.stop()
                self.speaker = None  # it calls back into this response: no cycle left behind
        self.object.update(status=status, usage=_usage(usage))
        if details is not None:
            self.object["status_details"] = details
        await self.send({"type": "response.done", "response": self.object})

    # --- the assistant's message ------------------------------------------------------------

    async def _say(self, text: str) -> None:
        message = self.message if self.message is not None else await self._open_message()
        part = message["content"][0]
        key = "transcript" if self.audio else "text"
        part[key] += text
        where = self._where(message)
        kind = "response.output_audio_transcript.delta" if self.audio else "response.output_text.delta"
        await self.send({"type": kind, **where, "delta": text})
        if self.speaker is not None:
            await self.speaker.add(text)

    async def _open_message(self) -> Json:
        part = {"type": "output_audio", "transcript": ""} if self.audio else {"type": "output_text", "text": ""}
        message: Json = {"id": new_id("item"), "type": "message", "object": "realtime.item", "status": "in_progress", "role": "assistant", "content": [part]}
        self.message = message
        await self._output_item(message)
        await self.send({"type": "response.content_part.added", **self._where(message), "part": _event_part(part)})
        if self.audio:
            self.session.audio_ms[message["id"]] = 0
            self.speaker = Speaker(self.session.services, self.config["voice"], self.config["speed"], self._audio)
        return message

    async def _audio(self, pcm: bytes) -> None:
        assert self.message is not None
        self.session.audio_ms[self.message["id"]] += len(pcm) // PCM_BYTES_PER_MS
        await self.send({"type": "response.output_audio.delta", **self._where(self.message), "delta": base64.b64encode(pcm).decode()})

    async def _finish_message(self) -> None:
        message = self.message
        if message is None:
            return
        part, where = message["content"][0], self._where(message)
        if self.audio:
            await self.send({"type": "response.output_audio.done", **where})
            await self.send({"type": "response.output_audio_transcript.done", **where, "transcript": part["transcript"]})
        else:
            await self.send({"type": "response.output_text.done", **where, "text": part["text"]})
        await self.send({"type": "response.content_part.done", **where, "part": _event_part(part)})
        await self._item_done(message, "completed" if self.status == "completed" else "incomplete")

    # --- function and MCP calls ---------------------------------------------------------------

    def _new_call(self, name: str, call_id: str | None) -> Json:
        """A function call item, or an MCP tool's (``mcp_call``, ``mcp_approval_request``)."""
        item = self.mcp.item_for(name) if self.mcp is not None else None
        if item is not None:
            return item
        return {
            "id": new_id("item"), "type": "function_call", "object": "realtime.item", "status": "in_progress",
            "call_id": call_id or new_id("call"), "name": name, "arguments": "",
        }

    async def _call(self, calls: dict[int, Json], delta: Json) -> None:
        index = delta.get("index", 0)
        call = calls.get(index)
        function = delta.get("function") or {}
        if call is None:
            for earlier in calls.values():  # the model began another call: the ones before are whole
                if earlier["id"] not in self.whole_calls:
                    await self._finish_call(earlier, "completed")
            call = calls[index] = self._new_call(function.get("name") or "", delta.get("id"))
            await self._output_item(call)
            if call["type"] == "mcp_call":
                await self.send({"type": "response.mcp_call.in_progress", "item_id": call["id"], "output_index": self._index(call)})
        if function.get("arguments") and call["id"] not in self.whole_calls:
            call["arguments"] += function["arguments"]
            if call["type"] in ARGUMENT_DELTAS:  # an approval request is sent whole
                await self.send({"type": ARGUMENT_DELTAS[call["type"]], **self._call_where(call), "delta": function["arguments"]})
            if _whole(call["arguments"]):
                await self._finish_call(call, "completed")

    async def _finish_call(self, call: Json, status: str) -> None:
        self.whole_calls.add(call["id"])
        kind, where = call["type"], self._call_where(call)
        if kind == "function_call":
            await self.send({"type": "response.function_call_arguments.done", **where, "name": call["name"], "arguments": call["arguments"]})
            await self._item_done(call, status)
        elif kind == "mcp_call":
            await self.send({"type": "response.mcp_call_arguments.done", **where, "arguments": call["arguments"]})
            if status == "completed":
                self.to_run.append(call)  # run once the answer is over
            else:
                not_run(call, "its arguments were cut off (max_output_tokens)")
                await self._item_done(call, None, later=True)
        else:  # an approval request: recorded (when whole) before the client can answer it
            if status == "completed":
                await self.session.mcp.issue(self.mcp, call)
            await self._item_done(call, None)

    async def _run_calls(self) -> None:
        """Run the whole MCP calls, one after the other, in order."""
        while self.to_run:
            call = self.running = self.to_run[0]
            await self.session.mcp.run(self.mcp, call)
            self.to_run.pop(0)
            self.running = None
            ended = "response.mcp_call.completed" if call["status"] == "completed" else "response.mcp_call.failed"
            await self.send({"type": ended, "item_id": call["id"], "output_index": self._index(call)})
            await self._item_done(call, None, later=True)

    def _call_where(self, call: Json) -> Json:
        where = {"response_id": self.id, "item_id": call["id"], "output_index": self._index(call)}
        return {**where, "call_id": call["call_id"]} if call["type"] == "function_call" else where

    # --- items of the response ----------------------------------------------------------------

    def _index(self, item: Json) -> int:
        return next(index for index, output in enumerate(self.object["output"]) if output["id"] == item["id"])

    def _where(self, item: Json) -> Json:
        return {"response_id": self.id, "item_id": item["id"], "output_index": self._index(item), "content_index": 0}

    async def _output_item(self, item: Json) -> None:
        self.object["output"].append(item)
        await self.send({"type": "response.output_item.added", "response_id": self.id, "output_index": self._index(item), "item": snapshot(item)})
        await self.session.add(item, done=False)

    async def _item_done(self, item: Json, status: str | None, later: bool = False) -> None:
        """``later``: its ``conversation.item.done`` after ``response.done`` (an MCP call)."""
        if status is not None:
            item["status"] = status
        self.session.items.recount(item)
        await self.send({"type": "response.output_item.done", "response_id": self.id, "output_index": self._index(item), "item": snapshot(item)})
        if later:
            self.ran.append(item)
        else:
            await self.send({"type": "conversation.item.done", "previous_item_id": None, "item": snapshot(item)})


def _whole(arguments: str) -> bool:
    """Whether a call's arguments are complete: a JSON object, closed (nothing can follow it)."""
    if not arguments.rstrip().endswith("}"):
        return False
    try:
        return isinstance(json.loads(arguments), dict)
    except ValueError:
        return False


def _event_part(part: Json) -> Json:
    """A content part as the part events name it (``audio``/``text``, not the item's
    ``output_audio``/``output_text``)."""
    return {**part, "type": part["type"].removeprefix("output_")}


def _usage(usage: Json) -> Json:
    prompt, completion = usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0)
    return {
        "total_tokens": prompt + completion,
        "input_tokens": prompt,
        "output_tokens": completion,
        "input_token_details": {"text_tokens": prompt, "audio_tokens": 0, "cached_tokens": cached},
        "output_token_details": {"text_tokens": completion, "audio_tokens": 0},
    }
