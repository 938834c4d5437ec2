"""A Realtime conversation session (``/v1/realtime?model=...``): a cascade of the local
parts - the user's turn (``input_audio.py``) transcribed (``transcriber.py``), the
conversation's items (``conversation_items.py``) as a chat for the session's model, its
answer (``response.py``) streamed back as text and, sentence by sentence as the model
writes it, as speech.

One response runs at a time. ``response.cancel`` or the user speaking over it (barge-in,
``interrupt_response``) ends it ``cancelled``, with what was said so far kept in its item;
``conversation.item.truncate`` then cuts the item's transcript to the audio the client
played. A turn heard while a response runs (``interrupt_response: false``) is answered when
that response ends. Function tools are the chat model's tools; ``mcp`` tools are served by
``mcp_tools.py`` (listed, called, approved).

What a client can make a session hold is bounded: its items (count and bytes), its
configuration's bytes (``realtime_config_bytes``: instructions, tools, a response's own),
its audio (``input_audio.py``), its turns waiting to be heard (``transcriber.Hearing``).
"""

from __future__ import annotations

import asyncio
import time

from ...backends.capabilities import CHAT, takes_images
from ...errors import OpenAIError, bad_request
from ...errors import unsupported_value as unsupported
from ...json.types import Json
from ..mcp.calls import MCP_ITEMS
from ..mcp.servers import TOOL, McpServer, redacted
from ..responses.request import chat_tools
from ..services import Services
from .audio_in import Turn
from .conversation_items import ConversationItems, truncated
from .events import Gate, Send, checked_config_size, error_event, event_id, new_id, only, user_audio_item
from .input_audio import InputAudio
from .mcp_tools import SessionMcp, checked_servers
from .response import Response
from .transcriber import LOGPROBS, Hearing, checked_config

SESSION_FIELDS = ("type", "model", "instructions", "output_modalities", "audio", "tools", "tool_choice", "max_output_tokens", "include", "tracing", "truncation", "prompt")
RESPONSE_FIELDS = ("output_modalities", "instructions", "audio", "tools", "tool_choice", "max_output_tokens", "metadata", "conversation", "input")
HELD_FIELDS = ("instructions", "tools", "tool_choice", "transcription")  # what counts in realtime_config_bytes


class ConversationSession:
    def __init__(self, services: Services, send: Send, gate: Gate, model: str, transcription_model: str, voice: str) -> None:
        settings = services.settings
        self.services = services
        self.send = send
        self.gate = gate
        self.id = new_id("sess")
        self.conversation_id = new_id("conv")
        self.expires_at = int(time.time() + settings.realtime_session_seconds)
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
        self.input = InputAudio(settings, send, self._accept, self._turn, respond=True)
        self.input.on_speech = self._barge_in
        self.items = ConversationItems(settings.realtime_max_items, settings.realtime_conversation_bytes)
        self.audio_ms: dict[str, int] = {}  # an assistant item's audio sent, for truncate
        self.response: asyncio.Task | None = None
        self.cancel_reason = "client_cancelled"
        self.hearing = Hearing(services, gate, send)
        self.mcp = SessionMcp(self)

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
            "tools": redacted(config["tools"]),  # an mcp tool's headers and authorization never shown
            "tool_choice": config["tool_choice"],
            "max_output_tokens": config["max_output_tokens"],
            "include": list(config["include"]),
            "audio": {
                "input": audio_input,
                "output": {"format": {"type": "audio/pcm", "rate": 24_000}, "voice": config["voice"], "speed": config["speed"]},
            },
        }

    def models(self) -> list[str]:
        """The models the session uses as configured now (``sessions.ready``): what hears the
        user, the chat model, and the speech model when it answers in audio."""
        config = self.config
        models = [(config["transcription"] or {}).get("model") or self.transcription_model, self.model]
        speech = self.services.settings.speech_model
        if config["output_modalities"] == ["audio"] and speech:
            models.append(speech)
        return models

    def update(self, session: Json) -> None:
        """``session.update``: every field honoured or refused naming it; nothing changes
        unless all of it can."""
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
            config["output_modalities"] = _modalities(session["output_modalities"], "session.output_modalities")
        found = checked_tools(self.services, config, "session", "session")  # refused now, not at the first response
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
            if voice not in self.services.settings.voices:
                raise unsupported("session.audio.output.voice", f"one of {', '.join(self.services.settings.voices)}")
            config["voice"] = voice
        config["speed"] = output.get("speed", config["speed"])
        checked_config_size({field: config[field] for field in HELD_FIELDS}, self.services.settings.realtime_config_bytes, "session")
        self.input.apply(audio_format, detection)
        self.config = config
        if _on_the_loop():  # a session being made beside the loop lists its servers at its first response
            self.mcp.list_soon(found)

    # --- events -----------------------------------------------------------------------------

    def _reads_images(self, item: Json) -> bool:
        """Whether an item's images may be kept: it has some, and the session's model reads them."""
        content = item.get("content") if item.get("type") == "message" else None
        if not any(isinstance(part, dict) and part.get("type") == "input_image" for part in content or []):
            return False
        return takes_images(self.services.registry.serving(self.model, CHAT), self.model)

    async def handle(self, kind: str, event: Json) -> None:
        """A client event of a conversation (``session.update`` and the input audio buffer's
        are the connection's and ``input_audio.py``'s)."""
        if kind == "conversation.item.create":
            item = _item(event["item"], self._reads_images(event["item"]))
            if item["type"] == "mcp_approval_response":
                await self.mcp.answer(item, event.get("previous_item_id"))
            else:
                await self.add(item, event.get("previous_item_id"))
        elif kind == "conversation.item.retrieve":
            await self.send({"type": "conversation.item.retrieved", "event_id": event_id(), "item": self.items.find(event["item_id"])})
        elif kind == "conversation.item.delete":
            self.items.delete(event["item_id"])
            self.audio_ms.pop(event["item_id"], None)
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

    async def add(self, item: Json, previous: str | None = None, done: bool = True) -> None:
        after = self.items.add(item, previous)
        self.input.previous_item = self.items.last_id
        for kind in ("conversation.item.added", "conversation.item.done")[: 2 if done else 1]:
            await self.send({"type": kind, "event_id": event_id(), "previous_item_id": after, "item": item})

    async def _truncate(self, event: Json) -> None:
        item = self.items.find(event["item_id"])
        sent = self.audio_ms.get(item["id"])
        if item.get("role") != "assistant" or sent is None:
            raise bad_request("Only an assistant message with audio can be truncated.", "item_id", "invalid_value")
        end, index = event["audio_end_ms"], event.get("content_index", 0)
        if end > sent:
            raise bad_request(f"Audio content of {sent}ms is shorter than {end}ms.", "audio_end_ms", "invalid_value")
        truncated(item, index, end, sent)
        self.audio_ms[item["id"]] = end
        await self.send({"type": "conversation.item.truncated", "event_id": event_id(), "item_id": item["id"], "content_index": index, "audio_end_ms": end})

    # --- a user's turn ------------------------------------------------------------------------

    def _accept(self, item_id: str) -> None:
        """Take a turn as an item now, or refuse it before anything is sent (its audio stays)."""
        self.hearing.room()
        self.items.add(user_audio_item(item_id))
        self.input.previous_item = self.items.last_id

    async def _turn(self, turn: Turn) -> None:
        item = self.items.find(turn.item)
        for kind in ("conversation.item.added", "conversation.item.done"):
            await self.send({"type": kind, "event_id": event_id(), "previous_item_id": self.items.before(item), "item": item})
        self.hearing.start(self._hear(item, turn), turn.item)

    async def _hear(self, item: Json, turn: Turn) -> None:
        """The turn transcribed (announced when the session asks), then answered."""
        announced = self.config["transcription"]
        config = announced or {"model": self.transcription_model}
        heard = await self.hearing.hear(config, LOGPROBS in self.config["include"], turn, announced is not None)
        item["content"][0]["transcript"] = heard.text or ""
        self.items.recount(item)
        detection = self.input.turn_detection
        if heard.text and detection is not None and detection.get("create_response", True):
            await self._respond_in_turn()

    async def _respond_in_turn(self) -> None:
        """Answer a heard turn once the response running (if any) has ended: a turn heard
        while the model speaks gets its answer after it, never silence."""
        while self.response is not None and not self.response.done():
            await asyncio.wait([self.response])
        try:
            self._respond({})
        except OpenAIError as error:
            await self.send(error_event(error))

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
        asked: Json = {key: given[key] for key in ("instructions", "tools", "tool_choice", "max_output_tokens") if key in given}
        config = {**self.config, **asked}
        if "output_modalities" in given:
            config["output_modalities"] = _modalities(given["output_modalities"], "response.output_modalities")
        came_from = ("response" if "tools" in given else "session", "response" if "tool_choice" in given else "session")
        found = checked_tools(self.services, config, *came_from)
        checked_config_size({field: config[field] for field in HELD_FIELDS}, self.services.settings.realtime_config_bytes, "response")
        response = Response(self, config, given.get("metadata"), came_from, found)
        self.response = asyncio.create_task(response.run(), name="realtime response")

    async def close(self) -> None:
        self.cancel_reason = ""  # gone: nothing more is sent
        if self.response is not None:
            self.response.cancel()
            await asyncio.gather(self.response, return_exceptions=True)
        await self.hearing.close()
        await self.mcp.close()
        # What the session held goes now, not at the next garbage collection.
        self.input.close()
        self.items.clear()
        self.audio_ms.clear()


def _modalities(value: list[str], param: str) -> list[str]:
    if value not in (["audio"], ["text"]):
        raise unsupported(param, "['audio'] or ['text']")
    return list(value)


def _item(given: Json, images: bool = False) -> Json:
    """A client's item as the conversation keeps it; ``images``: the session's model reads
    images (an ``input_image`` part: a data URL or a URL, checked as chat's are when a
    response reads it: backends/llama/images.py)."""
    kind = given.get("type")
    if kind == "mcp_approval_response":  # as the document has it: no object, no status
        return {**given, "id": given.get("id") or new_id("mcpa")}
    if kind in MCP_ITEMS:
        raise unsupported("item.type", f"'{kind}' items are made by the server here (answer a request with mcp_approval_response)")
    item = {**given, "id": given.get("id") or new_id("item"), "object": "realtime.item", "status": "completed"}
    if kind == "message":
        for index, part in enumerate(given.get("content") or []):
            if images and part.get("type") == "input_image" and given.get("role") == "user":
                if not isinstance(part.get("image_url"), str) or not part["image_url"]:
                    param = f"item.content[{index}].image_url"
                    raise bad_request(f"Missing required parameter: '{param}'.", param, "missing_required_parameter")
            elif part.get("type") not in ("input_text", "output_text", "text"):
                kinds = "text parts, and images in a user's message" if images else "text parts"
                raise unsupported(f"item.content[{index}].type", f"{kinds} (speak into the input audio buffer for audio)")
    elif kind not in ("function_call", "function_call_output"):
        raise unsupported("item.type", "message, function_call, function_call_output or mcp_approval_response")
    return item


def _on_the_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def checked_tools(services: Services, config: Json, tools_from: str, choice_from: str) -> list[McpServer]:
    """A configuration's tools and tool choice as the chat model can take them, or the 400
    naming what cannot be (a function without a name, a tool that is neither a function nor
    an MCP server this service may call); its MCP servers."""
    tools = config["tools"] or []
    for index, tool in enumerate(tools):
        if tool.get("type") == "function" and not tool.get("name"):
            param = f"{tools_from}.tools[{index}].name"
            raise bad_request(f"Missing required parameter: '{param}'.", param, "missing_required_parameter")
    choice = config["tool_choice"]
    if isinstance(choice, dict) and choice.get("type") == "function" and not choice.get("name"):
        param = f"{choice_from}.tool_choice.name"
        raise bad_request(f"Missing required parameter: '{param}'.", param, "missing_required_parameter")
    found = checked_servers(services, config, tools_from, choice_from)
    chat_tools(tools, f"{tools_from}.tools", served=(TOOL,))
    return found
