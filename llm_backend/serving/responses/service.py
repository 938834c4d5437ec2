"""Creating a response: history, the backend call, storing, in that order.

Responses are a translation layer over the backend's ``chat_completion``: the request
(with its history: a ``previous_response_id`` chain or a conversation's items) becomes one
chat request, and the chat answer becomes the Response object or its event stream. The
engine's prompt-prefix cache makes a follow-up turn skip the shared prefix, which
``usage.input_tokens_details.cached_tokens`` shows.

A request is checked and its history loaded before anything is written or generated, so a
rejected request stores nothing. A streamed one opens as soon as it is checked (its
parameters, its history, its tools: a 400 before any event, as OpenAI answers a malformed
body): its ``response.created`` comes before the engine's work, whatever the prompt's size
(a local model's stream comes back unstarted, ``chat_completion_objects``), and what the
engine refuses then (a prompt too long for the context, a full queue) is its
``response.failed`` (events.py), as OpenAI reports what fails once a stream is open.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable
from typing import Any

from ...backends.capabilities import CHAT, takes_images
from ...json.types import Json
from ..metadata import check_metadata
from ... import errors
from ...budgets import check_lists
from ...backends.base import Serving, Stream
from ...backends.pool_answers import started
from ...errors import bad_request, conversation_not_found, named_as
from ..services import Services
from ...storage.responses import NewResponse, ResponseNotFound
from . import background, client_tools, cloud_tools, context_window, file_search, objects, reasoning, request, summary, warmup
from ..mcp import calls as mcp_calls, run as mcp_run
from .events import Event, ResponseStream
from .input_images import OwnFiles, unseen_history
from .items import new_id, normalize
from ..mcp.servers import Catalog, redacted
from .memory import ConnectionMemory



def serves_here(backend: Any) -> bool:
    """Whether Responses for this backend's models are served here: every local backend,
    and an upstream configured with ``responses: local`` (over its chat completions); a
    request for another upstream's model is forwarded to it before it gets here."""
    return backend.serving("createResponse") is Serving.HERE


def _conversation_id(body: Json) -> str | None:
    conversation = body.get("conversation")
    if isinstance(conversation, dict):
        return conversation.get("id")
    return conversation


async def history(services: Services, owner: str, body: Json, memory: ConnectionMemory | None = None) -> list[Json]:
    previous = body.get("previous_response_id")
    if previous:
        remembered = memory.history(owner, previous) if memory is not None else None
        if remembered is not None:
            return remembered
        try:
            return await services.database.run(services.database.responses.history, owner, previous)
        except ResponseNotFound as missing:
            raise errors.missing(
                "Previous response", missing.response_id, "previous_response_id", "previous_response_not_found"
            ) from None
    conversation_id = _conversation_id(body)
    if conversation_id:
        items = await services.database.run(services.database.conversations.items, owner, conversation_id)
        if items is None:
            raise conversation_not_found(conversation_id, "conversation")
        return items
    return []


def check_call_outputs(earlier: list[Json], turn: list[Json]) -> None:
    """A function call's output answers a call of the history or of the turn itself, as
    OpenAI checks (its words); else the model would read a reply to nothing."""
    calls = {item.get("call_id") for item in [*earlier, *turn] if item.get("type") == "function_call"}
    for item in turn:
        if item.get("type") == "function_call_output" and item.get("call_id") not in calls:
            raise bad_request(f"No tool call found for function call output with call_id {item.get('call_id')}.", "input")


class Turn:
    """One response being made: what it answers, and how it is kept."""

    def __init__(self, services: Services, owner: str, body: Json, backend: Any, memory: ConnectionMemory | None = None) -> None:
        self.services = services
        self.model_defaults = backend.sampling_defaults(body["model"])
        self.owner = owner
        self.body = body
        self.id = new_id("resp")
        self.created_at = int(time.time())
        self.store = body.get("store") is not False
        self.conversation_id = _conversation_id(body)
        self.input_items: list[Json] = []
        self.earlier: list[Json] = []
        # A WebSocket connection's own memory (``memory.py``): it keeps this response if it
        # is not stored, and may hold the one this continues.
        self.memory = memory
        self.previous_remembered = False
        # The namespace, custom and client-executed tools the model sees as functions.
        self.client_tools = client_tools.ClientTools(body)

    def skeleton(self, status: str) -> Json:
        return objects.skeleton(self.body, self.id, self.created_at, status, self.model_defaults)

    def record(self, response: Json) -> NewResponse:
        input_items, previous = self.input_items, self.body.get("previous_response_id")
        if self.previous_remembered:
            # Its previous response was never stored: keep the history it continued here,
            # so the stored chain reads whole later.
            input_items, previous = [*self.earlier, *self.input_items], None
        return NewResponse(
            id=self.id,
            owner=self.owner,
            model=self.body["model"],
            created_at=self.created_at,
            response=response,
            # client_metadata is the client's own channel (spec/leniency.py): never stored.
            request={**{k: v for k, v in self.body.items() if k != "client_metadata"}, "tools": redacted(self.body.get("tools"))},
            input_items=input_items,
            previous_response_id=previous,
            conversation_id=self.conversation_id,
            background=bool(self.body.get("background")),
        )

    def conversation_items(self, response: Json) -> list[Json]:
        # A failed or cut-off turn adds nothing to the conversation.
        if response["status"] not in ("completed", "incomplete") or response.get("error"):
            return []
        return [*self.input_items, *response["output"]]

    async def save(self, response: Json) -> None:
        """Keep the finished response (and extend its conversation); committed on return."""
        database = self.services.database
        if self.store:
            await database.run(database.responses.save, self.record(response), self.conversation_items(response))
        elif self.conversation_id:
            await database.run(database.conversations.add_items, self.owner, self.conversation_id, self.conversation_items(response))
        if not self.store and self.memory is not None:
            self.memory.keep(self.id, self.owner, [*self.earlier, *self.conversation_items(response)])

    async def finish(self, response: Json, events: list[Json] | None = None) -> bool:
        """Replace the stored row of a background response, still running, with a newer
        object (and its last ``events``); False if it ended meanwhile (cancelled) or is gone."""
        database = self.services.database
        return await database.run(database.responses.finish, self.owner, self.id, response, self.conversation_items(response), events)


def checked_backend(services: Services, body: Json) -> Any:
    """The local backend of the request's model (checked), or a 400 saying why not."""
    if not body.get("model"):
        # The spec lets it out for stored prompts (OpenAI's cloud); nothing else names one.
        raise bad_request("Missing required parameter: 'model'.", "model", "missing_required_parameter")
    check_lists("createResponse", body)  # before any item is read
    request.check(body)
    cloud_tools.check_hosted(body, services.settings.responses_hosted_tools)
    check_metadata(body.get("metadata"))
    model_id = body["model"]
    backend = services.registry.backend_for(model_id)
    if not serves_here(backend):
        raise errors.model_not_supported(model_id, "the Responses API here")
    # Answered over chat completions: a model that does not chat gets the registry's refusal.
    return services.registry.serving(model_id, CHAT)


def _history_param(body: Json) -> str:
    return "conversation" if body.get("conversation") else "previous_response_id"


def _replayable(items: list[Json], catalog: Catalog | None, client: client_tools.ClientTools) -> list[Json]:
    return client.replayable(mcp_calls.replayable(file_search.replayable(items), catalog))


async def _chat(
    backend: Any,
    body: Json,
    earlier: list[Json],
    turn: list[Json],
    stream: bool,
    catalog: Catalog | None = None,
    client: client_tools.ClientTools | None = None,
    seal: Any = None,
    files: OwnFiles | None = None,
) -> Json:
    """The chat request the model is asked: without the file_search tool (served before
    generation), MCP tools as functions (``catalog``), namespace, custom and client-executed
    tools as functions and hosted tools left out (``client``), with the items a chat can
    replay (reasoning items' sealed text opened with ``seal``), fitted to the context window
    as ``truncation`` and ``context_management`` say (``context_window.py``); images given by
    ``file_id`` read from the caller's ``files`` (input_images.py)."""
    earlier, turn = reasoning.readable(earlier, seal), reasoning.readable(turn, seal)
    if files is not None:
        earlier, turn = await files.both(earlier, turn, _history_param(body))
    client = client if client is not None else client_tools.ClientTools(body)
    chat_body = client.chat_body(file_search.chat_body(catalog.chat_body(body) if catalog is not None else body))
    earlier, turn = await context_window.fit(
        backend, chat_body, _replayable(earlier, catalog, client), _replayable(turn, catalog, client)
    )
    chat = request.chat_request(chat_body, earlier, turn, stream)
    await context_window.check_compaction(backend, chat_body, chat)
    return chat


async def input_tokens(services: Services, owner: str, body: Json) -> Json:
    """``POST /v1/responses/input_tokens``: the tokens the model would read for ``body``,
    counted by its own chat template and tokenizer (history, instructions, tools included)."""
    backend = checked_backend(services, body)
    turn = normalize(body.get("input"), images=takes_images(backend, body["model"]))
    earlier = await history(services, owner, body)
    unseen_history(earlier, takes_images(backend, body["model"]), _history_param(body))
    prepared = await mcp_run.prepare_tools(services, body, [*earlier, *turn])
    chat = await _chat(
        backend, body, earlier, turn, stream=False, catalog=prepared[2] if prepared else None, seal=services.reasoning_seal,
        files=OwnFiles(services, owner),
    )
    count = await backend.prompt_tokens(body["model"], chat)
    return {"object": "response.input_tokens", "input_tokens": count}


async def create(
    services: Services, owner: str, body: Json, memory: ConnectionMemory | None = None
) -> Json | Stream[Event]:
    """The response to ``body``: the object, or its events when ``stream`` is set;
    ``memory``: the WebSocket connection's, when it comes through one."""
    backend = checked_backend(services, body)
    model_id = body["model"]
    compacting = summary.triggered(body)  # its last item a compaction_trigger: the answer is their summary
    turn = Turn(services, owner, compacting or body, backend, memory)
    turn.input_items = normalize(turn.body.get("input"), images=takes_images(backend, model_id))
    earlier = turn.earlier = await history(services, owner, body, memory)
    previous = body.get("previous_response_id")
    turn.previous_remembered = (
        isinstance(previous, str) and memory is not None and memory.history(owner, previous) is not None
    )
    stream = bool(body.get("stream"))
    keepalive = services.settings.stream_keepalive_seconds
    warming = body.get("generate") is False  # the WebSocket mode's warm-up (spec/client_events.py)
    if warming:
        _warmable(body, compacting)
    if compacting is not None:
        return await summary.as_response(turn, backend, stream, keepalive)
    unseen_history(earlier, takes_images(backend, model_id), _history_param(body))
    check_call_outputs(earlier, turn.input_items)
    if warming:  # checked as the turn it prepares would be
        prepared = await _chat(
            backend, turn.body, earlier, turn.input_items, False, None, turn.client_tools, services.reasoning_seal,
            OwnFiles(services, owner),
        )
        return await warmup.warmed(turn, backend, prepared, stream, keepalive)
    # MCP servers are listed (and the turn's approvals answered) before anything is generated.
    tools = await mcp_run.prepare(services, owner, body, earlier, turn.input_items, turn.id)
    if tools is not None and mcp_calls.answers_approvals(turn.input_items):
        body = _continued(body)  # the model answers the approved calls: nothing forces another
    catalog = tools.catalog if tools is not None else None
    # Approved calls run before the model answers: then its first answer is asked for later.
    first = tools is None or not tools.pending
    seal = services.reasoning_seal
    chat = (
        await _chat(
            backend, body, earlier, turn.input_items, stream or tools is not None, catalog, turn.client_tools, seal,
            OwnFiles(services, owner),
        )
        if first
        else None
    )
    # file_search runs before generation; its excerpts follow the turn's input.
    retrieval = await file_search.retrieve(services, owner, body, earlier, turn.input_items)
    chat = file_search.grounded(chat, retrieval) if chat is not None else None
    if tools is not None:
        tools.answer = _later_answers(backend, turn, body, retrieval, tools.catalog)
    if body.get("background"):
        if chat is not None:  # refused now, as the answer would refuse it, not stored as failed
            await _refusing_as_responses(backend.check_reasoning_effort(model_id, chat.get("reasoning_effort")))
        return await background.start(turn, backend, chat, tools)
    answer = await _answer(backend, model_id, chat) if chat is not None else None
    if answer is not None and not stream:
        # Streamed only for its MCP calls: the engine's refusals stay this request's error.
        answer = await _refusing_as_responses(started(answer))
    sealing = reasoning.sealing(body, seal)
    if tools is not None:
        events = ResponseStream(
            turn.skeleton("in_progress"), answer, turn.save, retrieval, tools, sealing=sealing, client=turn.client_tools,
            keepalive=keepalive,
        ).events()
        return events if stream else await _final(events)
    if stream:
        return ResponseStream(
            turn.skeleton("in_progress"), answer, turn.save, retrieval, sealing=sealing, client=turn.client_tools,
            keepalive=keepalive,
        ).events()
    assert answer is not None  # without MCP tools the first answer is asked for at once
    response = objects.from_chat(turn.skeleton("in_progress"), answer, sealing)
    response = file_search.attach(turn.client_tools.answered(response), retrieval)
    await turn.save(response)
    return response


def _warmable(body: Json, compacting: Json | None) -> None:
    """A warm-up prepares a turn's prompt: not one that compacts, nor one whose MCP servers
    would be listed (and its approvals answered) first; a 400 naming ``generate``."""
    if compacting is not None or any(tool.get("type") == "mcp" for tool in body.get("tools") or []):
        why = "a compaction_trigger" if compacting is not None else "mcp tools"
        raise bad_request(f"'generate': false is not supported with {why}.", "generate", "unsupported_parameter")


async def _answer(backend: Any, model_id: str, chat: Json) -> Any:
    """The backend's answer to ``chat``; its refusals named as the Responses API names the
    fields (``reasoning.effort``: a model that does not reason refuses it; ``max_output_tokens``)."""
    return await _refusing_as_responses(backend.chat_completion_objects(model_id, chat))


# The chat request's fields (request.py) a refusal names, as the Responses API names them.
AS_RESPONSES = {"reasoning_effort": "reasoning.effort", "max_tokens": "max_output_tokens"}


async def _refusing_as_responses(work: Awaitable[Any]) -> Any:
    return await named_as(work, AS_RESPONSES)


def _continued(body: Json) -> Json:
    """``body`` for an answer that continues the calls made before it: ``tool_choice`` no
    longer forces a call (the forced one was made), and a narrowing keeps narrowing."""
    choice = body.get("tool_choice")
    if choice == "required" or (isinstance(choice, dict) and choice.get("type") in ("function", "mcp")):
        return {**body, "tool_choice": "auto"}
    if isinstance(choice, dict) and choice.get("type") == "allowed_tools":
        return {**body, "tool_choice": {**choice, "mode": "auto"}}
    return body


def _later_answers(backend: Any, turn: Turn, body: Json, retrieval: Any, catalog: Catalog) -> mcp_run.Answer:
    """How the model answers again after its MCP calls ran: the same request with their
    outputs, no call forced (none at all once the calls are spent), within what is left
    of ``max_output_tokens``."""
    later = _continued(body)

    async def answer(output: list[Json], spent: Json | None, calls_left: int) -> Stream[Json] | None:
        round_body = {**later, "tool_choice": "none"} if calls_left <= 0 else dict(later)
        limit = body.get("max_output_tokens")
        if limit is not None:
            left = limit - ((spent or {}).get("completion_tokens") or 0)
            if left <= 0:
                return None
            round_body["max_output_tokens"] = left
        chat = await _chat(
            backend, round_body, turn.earlier, [*turn.input_items, *output], True, catalog, turn.client_tools,
            turn.services.reasoning_seal, OwnFiles(turn.services, turn.owner),
        )
        return await backend.chat_completion_objects(body["model"], file_search.grounded(chat, retrieval))

    return answer


async def _final(events: Stream[Event]) -> Json:
    """The response a stream ends with (stored before its last event)."""
    final: Json = {}
    async for kind, event in events:
        if kind in background.TERMINAL:
            final = event["response"]
    return final
