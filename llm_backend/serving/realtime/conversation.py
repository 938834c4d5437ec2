"""A Realtime conversation session (``/v1/realtime?model=...``): a cascade of the local
parts - the user's turn (``input_audio.py``) transcribed (``transcriber.py``), the
conversation's items as a chat for the session's model, its answer streamed back as text
and, sentence by sentence as the model writes it, as speech (``speaker.py``).

One response runs at a time. ``response.cancel`` or the user speaking over it (barge-in,
``interrupt_response``) ends it ``cancelled``, with what was said so far kept in its item;
``conversation.item.truncate`` then cuts the item's transcript to the audio the client
played. Function tools are the chat model's tools; a call comes out as a ``function_call``
item and its arguments' deltas.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any

import numpy as np

from ...errors import answered, bad_request
from ..services import Services
from ..responses.items import chat_messages
from ..responses.request import chat_tool_choice, chat_tools
from .events import Gate, Json, Send, event_id, new_id, only, unsupported, user_audio_item
from .input_audio import InputAudio
from .speaker import Speaker
from .transcriber import LOGPROBS, Hearing, checked_config

MAX_ITEMS = 1000
"""Items one conversation holds (more is refused: a session's memory is bounded)."""
PCM_BYTES_PER_MS = 48  # 24 kHz, 16-bit mono: what the audio deltas carry
SESSION_FIELDS = ("type", "model", "instructions", "output_modalities", "audio", "tools", "tool_choice", "max_output_tokens", "include", "tracing", "truncation", "prompt")
RESPONSE_FIELDS = ("output_modalities", "instructions", "audio", "tools", "tool_choice", "max_output_tokens", "metadata", "conversation", "input")


class ConversationSession:
    def __init__(self, services: Services, send: Send, gate: Gate, model: str, transcription_model: str, voice: str) -> None:
        self.services = services
        self.send = send
        self.gate = gate
        self.id = new_id("sess")
        self.conversation_id = new_id("conv")
        self.expires_at = int(time.time() + services.settings.realtime_session_seconds)
        self.model = model
        self.transcription_model = transcription_model  # what hears the user, announced or not
        self.config: Json = {
            "instructions": "",
            "output_modalities": ["audio"],
            "tools": [],
            "tool_choice": "auto",
            "max_output_tokens": "inf",
            "include": [],
            "transcription": None,  # input_audio_transcription events: off, as OpenAI's default
            "voice": voice,
            "speed": 1.0,
        }
        self.input = InputAudio(send, self._turn, services.settings.max_audio_seconds, respond=True)
        self.input.on_speech = self._barge_in
        self.items: list[Json] = []
        self.audio_ms: dict[str, int] = {}  # an assistant item's audio sent, for truncate
        self.response: asyncio.Task | None = None
        self.cancel_reason = "client_cancelled"
        self.hearing = Hearing(services)

    # --- the session object ---------------------------------------------------------------

    def to_openai(self) -> Json:
        config = self.config
        audio_input = self.input.to_openai()
        if config["transcription"] is not None:
            audio_input["transcription"] = dict(config["transcription"])
        return {
            "type": "realtime",
            "object": "realtime.session",
            "id": self.id,
            "model": self.model,
            "expires_at": self.expires_at,
            "output_modalities": list(config["output_modalities"]),
            "instructions": config["instructions"],
            "tools": list(config["tools"]),
            "tool_choice": config["tool_choice"],
            "max_output_tokens": config["max_output_tokens"],
            "include": list(config["include"]),
            "audio": {
                "input": audio_input,
                "output": {"format": {"type": "audio/pcm", "rate": 24_000}, "voice": config["voice"], "speed": config["speed"]},
            },
        }

    def update(self, session: Json) -> None:
        if session.get("type") != "realtime":
            raise unsupported("session.type", "this is a conversation session (connected with model=)")
        only(session, SESSION_FIELDS, "session")
        for field in ("tracing", "truncation", "prompt"):
            if session.get(field) not in (None, "auto", "disabled"):
                raise unsupported(f"session.{field}", "not available here")
        if "model" in session and session["model"] != self.model:
            raise unsupported("session.model", "the model is chosen when connecting")
        config = dict(self.config)
        for field in ("instructions", "tools", "tool_choice", "max_output_tokens", "include"):
            if field in session:
                config[field] = session[field]
        if "output_modalities" in session:
            config["output_modalities"] = self._modalities(session["output_modalities"], "session.output_modalities")
        chat_tools(config["tools"], "session.tools")  # refused now, not at the first response
        audio_config = session.get("audio") or {}
        only(audio_config, ("input", "output"), "session.audio")
        given = audio_config.get("input") or {}
        audio_format, detection = self.input.check(given, "session.audio.input")
        if "transcription" in given:
            transcription = given["transcription"]
            if transcription is not None:
                checked_config(self.services, transcription, "session.audio.input.transcription")
            config["transcription"] = transcription
        output = audio_config.get("output") or {}
        only(output, ("format", "voice", "speed"), "session.audio.output")
        if output.get("format", {}).get("type", "audio/pcm") != "audio/pcm":
            raise unsupported("session.audio.output.format.type", "speech is sent as audio/pcm (24 kHz)")
        if "voice" in output:
            voice = output["voice"]["id"] if isinstance(output["voice"], dict) else output["voice"]
            if voice not in self.services.settings.speech_voices:
                raise unsupported("session.audio.output.voice", f"one of {', '.join(self.services.settings.speech_voices)}")
            config["voice"] = voice
        config["speed"] = output.get("speed", config["speed"])
        self.input.apply(audio_format, detection)
        self.config = config

    @staticmethod
    def _modalities(value: list[str], param: str) -> list[str]:
        if value not in (["audio"], ["text"]):
            raise unsupported(param, "['audio'] or ['text']")
        return list(value)

    # --- events -----------------------------------------------------------------------------

    async def handle(self, kind: str, event: Json) -> None:
        """A client event of a conversation (``session.update`` and the input audio buffer's
        are the connection's and ``input_audio.py``'s)."""
        if kind == "conversation.item.create":
            await self._add(self._item(event["item"]), event.get("previous_item_id"))
        elif kind == "conversation.item.retrieve":
            await self.send({"type": "conversation.item.retrieved", "event_id": event_id(), "item": self._find(event["item_id"])})
        elif kind == "conversation.item.delete":
            self.items.remove(self._find(event["item_id"]))
            await self.send({"type": "conversation.item.deleted", "event_id": event_id(), "item_id": event["item_id"]})
        elif kind == "conversation.item.truncate":
            await self._truncate(event)
        elif kind == "response.create":
            self._respond(event.get("response") or {})
        elif kind == "response.cancel":
            if self.response is None or self.response.done():
                raise bad_request("Cancellation failed: no active response found.", None, "response_cancel_not_active")
            self.cancel_reason = "client_cancelled"
            self.response.cancel()
        elif kind == "output_audio_buffer.clear":
            raise unsupported("type", "output_audio_buffer.clear is for WebRTC and SIP connections")

    def _find(self, item_id: str) -> Json:
        for item in self.items:
            if item["id"] == item_id:
                return item
        raise bad_request(f"Item with item_id not found: {item_id}", "item_id", "item_not_found")

    def _item(self, given: Json) -> Json:
        kind = given.get("type")
        item = {**given, "id": given.get("id") or new_id("item"), "object": "realtime.item", "status": "completed"}
        if kind == "message":
            for index, part in enumerate(given.get("content") or []):
                if part.get("type") not in ("input_text", "output_text", "text"):
                    raise unsupported(f"item.content[{index}].type", "text parts (speak into the input audio buffer for audio)")
        elif kind not in ("function_call", "function_call_output"):
            raise unsupported("item.type", "message, function_call or function_call_output")
        return item

    async def _add(self, item: Json, previous: str | None = None, done: bool = True) -> None:
        if len(self.items) >= MAX_ITEMS:
            raise bad_request(f"A conversation holds at most {MAX_ITEMS} items; delete some.", None, "conversation_full")
        if any(existing["id"] == item["id"] for existing in self.items):
            raise bad_request(f"Item with id already exists: {item['id']}", "item.id", "item_already_exists")
        index = len(self.items) if previous is None else self.items.index(self._find(previous)) + 1
        after = self.items[index - 1]["id"] if index else None
        self.items.insert(index, item)
        self.input.previous_item = self.items[-1]["id"]
        for kind in ("conversation.item.added", "conversation.item.done")[: 2 if done else 1]:
            await self.send({"type": kind, "event_id": event_id(), "previous_item_id": after, "item": item})

    async def _truncate(self, event: Json) -> None:
        item = self._find(event["item_id"])
        sent = self.audio_ms.get(item["id"])
        if item.get("role") != "assistant" or sent is None:
            raise bad_request("Only an assistant message with audio can be truncated.", "item_id", "invalid_value")
        end = event["audio_end_ms"]
        if end > sent:
            raise bad_request(f"Audio content of {sent}ms is shorter than {end}ms.", "audio_end_ms", "invalid_value")
        part = item["content"][event.get("content_index", 0)]
        transcript = part.get("transcript", "")
        words = transcript.split()
        part["transcript"] = " ".join(words[: round(len(words) * end / sent)] if sent else [])  # what was heard, about
        self.audio_ms[item["id"]] = end
        await self.send({"type": "conversation.item.truncated", "event_id": event_id(), "item_id": item["id"], "content_index": 0, "audio_end_ms": end})

    # --- a user's turn ------------------------------------------------------------------------

    async def _turn(self, item_id: str, turn: np.ndarray) -> None:
        self.hearing.room()
        item = user_audio_item(item_id)
        await self._add(item)
        self.hearing.start(self._hear(item, turn), item_id)

    async def _hear(self, item: Json, turn: np.ndarray) -> None:
        """The turn transcribed (announced when the session asks), then answered."""
        announced = self.config["transcription"]
        send = self.send if announced is not None else _quiet
        config = announced or {"model": self.transcription_model}
        heard = await self.hearing.hear(config, LOGPROBS in self.config["include"], item["id"], turn, send)
        transcript = heard.text
        item["content"][0]["transcript"] = transcript or ""
        detection = self.input.turn_detection
        if transcript and detection is not None and detection.get("create_response", True):
            self._respond({})

    async def _barge_in(self) -> None:
        if self.response is not None and not self.response.done():
            self.cancel_reason = "turn_detected"
            self.response.cancel()

    # --- a response ---------------------------------------------------------------------------

    def _respond(self, given: Json) -> None:
        if self.response is not None and not self.response.done():
            raise bad_request(
                "Conversation already has an active response in progress. Wait until the response is finished before creating a new one.",
                None,
                "conversation_already_has_active_response",
            )
        only(given, RESPONSE_FIELDS, "response")
        if given.get("conversation", "auto") != "auto" or given.get("input") is not None:
            raise unsupported("response.conversation", "responses join the session's conversation here")
        config = {**self.config, **{key: given[key] for key in ("instructions", "tools", "tool_choice", "max_output_tokens") if key in given}}
        if "output_modalities" in given:
            config["output_modalities"] = self._modalities(given["output_modalities"], "response.output_modalities")
        chat_tools(config["tools"], "response.tools")
        self.response = asyncio.create_task(Response(self, config, given.get("metadata")).run(), name="realtime response")

    def messages(self, instructions: str) -> list[Json]:
        """The conversation as the chat model reads it: read as the Responses layer reads its
        items (``responses/items.chat_messages``), a spoken part as its transcript."""
        readable: list[Json] = []
        for item in self.items:
            if item["type"] == "message":
                text = " ".join(part.get("text") or part.get("transcript") or "" for part in item.get("content") or []).strip()
                if text:  # a turn nobody could hear says nothing
                    readable.append({"type": "message", "role": item["role"], "content": [{"type": "input_text", "text": text}]})
            else:  # function calls (their call_id optional here) and outputs
                readable.append({**item, "call_id": item.get("call_id") or item["id"]})
        system = [{"role": "system", "content": instructions}] if instructions else []
        return [*system, *chat_messages(readable)]

    async def close(self) -> None:
        self.cancel_reason = ""  # gone: nothing more is sent
        if self.response is not None:
            self.response.cancel()
            await asyncio.gather(self.response, return_exceptions=True)
        await self.hearing.close()


async def _quiet(event: Json) -> None:
    """Events of a transcription the session did not ask to see."""


class Response:
    """One response: the chat model's answer streamed as items, text or speech."""

    def __init__(self, session: ConversationSession, config: Json, metadata: Any) -> None:
        self.session = session
        self.config = config
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

    async def send(self, event: Json) -> None:
        await self.session.send({"event_id": event_id(), **event})

    def _chat(self) -> Json:
        config = self.config
        request: Json = {
            "model": self.session.model,
            "messages": self.session.messages(config["instructions"]),
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        choice, offered = chat_tool_choice(config["tool_choice"], chat_tools(config["tools"]))
        if offered:
            request["tools"], request["tool_choice"] = offered, choice
        if isinstance(config["max_output_tokens"], int):
            request["max_tokens"] = config["max_output_tokens"]
        return request

    async def run(self) -> None:
        try:
            async with self.session.gate.respond(self.session.model) as (rate_limits, status):
                await self._run()
                status(_STATUS[self.object["status"]])
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # refused before it began: a revoked key, a rate limit
            error = answered(exc).body()["error"]
            await self.session.send({"type": "error", "event_id": event_id(), "error": {**error, "event_id": None}})
            return
        await self.send({"type": "rate_limits.updated", "rate_limits": rate_limits})

    async def _run(self) -> None:
        session = self.session
        await self.send({"type": "response.created", "response": dict(self.object, output=[])})
        usage: Json = {}
        calls: dict[int, Json] = {}
        status, details = "completed", None
        try:
            try:
                backend = session.services.registry.backend_for(session.model)
                chunks = await backend.chat_completion_objects(session.model, self._chat())
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
                if self.speaker is not None:
                    await self.speaker.stop()
            except Exception as exc:
                error = answered(exc).body()["error"]
                status, details = "failed", {"type": "failed", "error": error}
            self.status = status
            await self._finish_message()
            for call in calls.values():
                await self._finish_call(call)
        finally:
            if self.speaker is not None:
                await self.speaker.stop()
        self.object.update(status=status, usage=_usage(usage))
        if details is not None:
            self.object["status_details"] = details
        await self.send({"type": "response.done", "response": self.object})

    # --- the assistant's message ------------------------------------------------------------

    async def _say(self, text: str) -> None:
        if self.message is None:
            await self._open_message()
        part = self.message["content"][0]
        key = "transcript" if self.audio else "text"
        part[key] += text
        where = self._where(self.message)
        kind = "response.output_audio_transcript.delta" if self.audio else "response.output_text.delta"
        await self.send({"type": kind, **where, "delta": text})
        if self.speaker is not None:
            await self.speaker.add(text)

    async def _open_message(self) -> None:
        part = {"type": "output_audio", "transcript": ""} if self.audio else {"type": "output_text", "text": ""}
        self.message = {"id": new_id("item"), "type": "message", "object": "realtime.item", "status": "in_progress", "role": "assistant", "content": [part]}
        await self._output_item(self.message)
        await self.send({"type": "response.content_part.added", **self._where(self.message), "part": _event_part(part)})
        if self.audio:
            self.session.audio_ms[self.message["id"]] = 0
            self.speaker = Speaker(self.session.services, self.config["voice"], self.config["speed"], self._audio)

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
        await self._item_done(message)

    # --- function calls -----------------------------------------------------------------------

    async def _call(self, calls: dict[int, Json], delta: Json) -> None:
        index = delta.get("index", 0)
        call = calls.get(index)
        function = delta.get("function") or {}
        if call is None:
            call = calls[index] = {
                "id": new_id("item"), "type": "function_call", "object": "realtime.item", "status": "in_progress",
                "call_id": delta.get("id") or new_id("call"), "name": function.get("name") or "", "arguments": "",
            }
            await self._output_item(call)
        if function.get("arguments"):
            call["arguments"] += function["arguments"]
            where = {"response_id": self.id, "item_id": call["id"], "output_index": self._index(call), "call_id": call["call_id"]}
            await self.send({"type": "response.function_call_arguments.delta", **where, "delta": function["arguments"]})

    async def _finish_call(self, call: Json) -> None:
        where = {"response_id": self.id, "item_id": call["id"], "output_index": self._index(call), "call_id": call["call_id"]}
        await self.send({"type": "response.function_call_arguments.done", **where, "name": call["name"], "arguments": call["arguments"]})
        await self._item_done(call)

    # --- items of the response ----------------------------------------------------------------

    def _index(self, item: Json) -> int:
        return next(index for index, output in enumerate(self.object["output"]) if output["id"] == item["id"])

    def _where(self, item: Json) -> Json:
        return {"response_id": self.id, "item_id": item["id"], "output_index": self._index(item), "content_index": 0}

    async def _output_item(self, item: Json) -> None:
        self.object["output"].append(item)
        await self.send({"type": "response.output_item.added", "response_id": self.id, "output_index": self._index(item), "item": _copy(item)})
        await self.session._add(item, done=False)

    async def _item_done(self, item: Json) -> None:
        item["status"] = "completed" if self.status == "completed" else "incomplete"
        await self.send({"type": "response.output_item.done", "response_id": self.id, "output_index": self._index(item), "item": _copy(item)})
        await self.send({"type": "conversation.item.done", "previous_item_id": None, "item": _copy(item)})


# A response's status as the metrics count it (a cancelled one as a client gone).
_STATUS = {"completed": 200, "incomplete": 200, "cancelled": 499, "failed": 500}


def _event_part(part: Json) -> Json:
    """A content part as the part events name it (``audio``/``text``, not the item's
    ``output_audio``/``output_text``)."""
    return {**part, "type": part["type"].removeprefix("output_")}


def _copy(item: Json) -> Json:
    return json.loads(json.dumps(item))


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

