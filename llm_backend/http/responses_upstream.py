"""The Responses WebSocket mode for an upstream's model: each ``response.create`` goes to the
upstream as a streamed ``POST /v1/responses``, and its events come back as the socket's frames.

Codex with its built-in OpenAI provider pointed here (``openai_base_url``) speaks only this
socket. For the model of an upstream (a team's gateway in front of OpenAI) every turn was
refused (400 ``model_not_supported``: the socket was not proxied), and Codex stopped at its
first turn. Each one now goes the way ``POST /v1/responses`` for that model goes
(``forwarding.forwarded``: the header rules, the tenant's guard, the upstream's bounds), so
an upstream serves it whether or not it has the WebSocket mode; the meter reads the final
response's ``usage`` from the relayed events as from a local model's (``Exchange.event``).

What the mode holds beyond HTTP is kept here, as OpenAI's socket keeps it:

- the connection remembers its last ``store: false`` response (``ConnectionMemory``): a
  ``previous_response_id`` naming it goes upstream as the history it continues (its input
  and output items before the new input), without the id, which the upstream never stored.
  Any other id goes as sent: a stored response, the upstream's to find and the guard's to
  check is the caller's. The history grows with each turn, so what goes upstream is held to
  ``max_body_bytes``, as each frame is;
- ``generate: false`` (a warm-up: "prepare request state without model output; the response
  ID can be used as previous_response_id on a later turn") is answered here, a response
  completed with no output and no usage, and remembered, so that the turn continuing it
  sends its history. Nothing is computed upstream: its HTTP API has no such request, and
  its own prompt cache serves the turn. A warm-up kept on its socket alone is not stored,
  so one that asks to be (``store`` true, the default) is refused, naming ``store``, and so
  is one continuing a response the upstream keeps (naming ``previous_response_id``);
- the handshake's ``OpenAI-Beta: responses_websockets=...`` names the socket, not a request
  over HTTP: it is not sent on.
"""

from __future__ import annotations

import json
import time
from typing import Any

import anyio
from starlette.types import Scope

from ..backends.base import Relayed, Serving, Stream
from ..backends.capabilities import FORWARDING
from ..backends.upstream.event_frames import EventFrames
from ..errors import OpenAIError, bad_request
from ..errors.upstream import upstream_broke_off, upstream_error, upstream_error_of, upstream_unreadable
from ..json.text import LARGE_BODY
from ..json.types import Json
from ..off_loop import off_loop
from ..serving.relayed import data_of, is_event_stream, object_of
from ..serving.responses import objects
from ..serving.responses.items import new_id
from ..serving.responses.memory import ConnectionMemory
from ..serving.responses.streamed_text import Event
from ..serving.services import Services
from .forwarding import forwarded

# The events that end a response, each carrying it whole.
FINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})
# Of an upstream's error answer, what is read for its message.
ERROR_BYTES = 1 << 16
SOCKET_BETA = "responses_websockets="


def answers(services: Services, body: Json) -> bool:
    """Whether ``body``'s model is an upstream's that answers the Responses API itself
    (``responses: forward``; with ``responses: local`` it is served here over its chat)."""
    model = body.get("model")
    if not isinstance(model, str):
        return False
    return services.registry.backend_for(model).serving("createResponse") is Serving.FORWARDED


async def create(services: Services, owner: str, body: Json, memory: ConnectionMemory, scope: Scope, large: bool) -> Stream[Event]:
    """The events of ``body``'s response (``stream`` set; ``large``: its frame was), answered
    upstream; refusals and the upstream's error answer raise, before any event."""
    previous = body.get("previous_response_id")
    # With a conversation too, the upstream refuses both as it would over HTTP.
    earlier = memory.history(owner, previous) if isinstance(previous, str) and "conversation" not in body else None
    sent = _continuing(body, earlier)
    if body.get("generate") is False:
        if body.get("store") is not False:
            raise bad_request(
                "A warm-up ('generate': false) of an upstream's model is kept on its connection only: set 'store' to false.",
                "store", "unsupported_parameter",
            )
        if isinstance(previous, str) and earlier is None:
            # What it continues is the upstream's: a warm-up kept here could not carry it on.
            raise bad_request(
                "A warm-up ('generate': false) of an upstream's model continues only this connection's last response.",
                "previous_response_id", "unsupported_parameter",
            )
        return _warm_up(body, owner, memory, sent["input"])
    backend = services.registry.serving(body["model"], FORWARDING)
    content = await off_loop(large or earlier is not None, _encoded, sent)
    limit = services.settings.max_body_bytes
    if earlier is not None and len(content) > limit:
        # The history a socket remembers grows with each turn: what goes upstream is held to
        # what one request may be here, as the client's own frames are.
        raise bad_request(
            f"The conversation continued from '{previous}' on this connection, with this input, is longer than a request "
            f"may be ({len(content)} bytes; at most {limit}). Start a new one, or send a shorter history.",
            "previous_response_id", "invalid_value",
        )
    upstream = str(getattr(backend, "name", "upstream"))
    answer = await forwarded(backend, _as_post(scope), content)
    if answer.status == 200 and not is_event_stream(answer):
        await _read_error(answer)  # closed: a streamed request answered whole is not the mode's
        raise upstream_unreadable()
    if answer.status != 200:
        raise upstream_error(answer.status, await _read_error(answer), upstream)
    remember = (owner, memory, sent["input"]) if body.get("store") is False else None
    return _relayed(answer, remember, previous if earlier is not None else None, upstream)


def _continuing(body: Json, earlier: list[Json] | None) -> Json:
    """What goes upstream: the history of a remembered ``previous_response_id`` in its place."""
    sent = {key: value for key, value in body.items() if key != "generate"}
    items = _items(body.get("input"))
    if earlier is not None:
        del sent["previous_response_id"]
        items = [*earlier, *items]
    sent["input"] = items
    return sent


def _items(value: Any) -> list[Json]:
    """``input`` as a list of items, as the client wrote them (text: one user message)."""
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    return list(value) if isinstance(value, list) else []


async def _warm_up(body: Json, owner: str, memory: ConnectionMemory, items: list[Json]) -> Stream[Event]:
    """A warm-up's events, as a local model's (``serving/responses/made.py``): nothing in
    its output, nothing computed in its usage."""
    started = objects.skeleton(body, new_id("resp"), int(time.time()), "in_progress")
    nothing = objects.usage({"prompt_tokens": 0, "completion_tokens": 0, "prompt_tokens_details": None})
    done = {**started, "status": "completed", "output": [], "usage": nothing}
    memory.keep(done["id"], owner, items)
    for number, (kind, response) in enumerate(
        (("response.created", started), ("response.in_progress", started), ("response.completed", done))
    ):
        yield kind, {"type": kind, "sequence_number": number, "response": response}


async def _relayed(
    answer: Relayed, remember: tuple[str, ConnectionMemory, list[Json]] | None, continued: str | None, upstream: str
) -> Stream[Event]:
    """The upstream's events, each as it ends; the final one's response remembered when it
    was not stored; the response of one that ``continued`` a remembered one names it, as the
    client asked (the upstream was sent its history instead). A failure midway (the relay's
    or the guard's error event, the upstream's own ``error``, a stream ended short of its
    response) raises, and the socket sends it as the mode's ``error`` event: a lane never waits
    for an end that will not come. However the relay ends (the client gone), the upstream
    request is closed."""
    frames = EventFrames()  # bounded by the relay, which framed the stream (event_frames.py)
    try:
        assert answer.chunks is not None  # an event stream comes in pieces (Relayed)
        async for chunk in answer.chunks:
            events = frames.feed(chunk)
            for data in await off_loop(len(events) > LARGE_BODY, data_of, events):
                event = await off_loop(len(data) > LARGE_BODY, object_of, data)
                if event is None:
                    continue  # [DONE], a comment's data: no event of the mode
                kind = event.get("type")
                if not isinstance(kind, str) or kind == "error":
                    raise _failed_midway(event, upstream)
                if continued is not None and isinstance(event.get("response"), dict):
                    event["response"]["previous_response_id"] = continued
                if kind in FINAL:
                    if remember is not None and isinstance(event.get("response"), dict):
                        owner, memory, items = remember
                        output = event["response"].get("output")
                        memory.keep(event["response"]["id"], owner, [*items, *(output if isinstance(output, list) else [])])
                    yield kind, event
                    return
                yield kind, event
        raise upstream_broke_off(upstream)
    finally:
        await _close(answer)


def _failed_midway(event: Json, upstream: str) -> OpenAIError:
    """An error the stream ended with: OpenAI's error event (``{"error": ...}``, as the relay
    and the guard write one), or the Responses stream's own ``error`` (its fields at the top)."""
    return upstream_error_of(502, event.get("error") if isinstance(event.get("error"), dict) else event, upstream)


async def _read_error(answer: Relayed) -> bytes:
    """Of an answer that is not the event stream, its first ``ERROR_BYTES``; the rest left."""
    if answer.content is not None or answer.chunks is None:
        return (answer.content or b"")[:ERROR_BYTES]
    read = bytearray()
    try:
        async for chunk in answer.chunks:
            read += chunk
            if len(read) >= ERROR_BYTES:
                break
    finally:
        await _close(answer)
    return bytes(read[:ERROR_BYTES])


async def _close(answer: Relayed) -> None:
    """The upstream request released, however its reading ended (the client gone: this task
    is being cancelled, and the close must still run)."""
    if answer.close is not None:
        with anyio.CancelScope(shield=True):
            await answer.close()


def _as_post(scope: Scope) -> Scope:
    """The socket's handshake as the ``POST /v1/responses`` the upstream is sent: a JSON body,
    an event stream asked for, the socket's own beta left out."""
    headers = []
    for name, value in scope["headers"]:
        if name in (b"content-type", b"content-length", b"accept"):
            continue
        if name == b"openai-beta":
            betas = [beta.strip() for beta in value.decode("latin-1").split(",")]
            kept = [beta for beta in betas if beta and not beta.startswith(SOCKET_BETA)]
            if not kept:
                continue
            value = ", ".join(kept).encode("latin-1")
        headers.append((name, value))
    headers += [(b"content-type", b"application/json"), (b"accept", b"text/event-stream")]
    return {**scope, "type": "http", "method": "POST", "query_string": b"", "headers": headers}


def _encoded(body: Json) -> bytes:
    return json.dumps(body, ensure_ascii=False).encode()
