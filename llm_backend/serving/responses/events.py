"""Chat completion chunks → the Responses streaming protocol.

One ``ResponseStream`` per streamed response. It yields ``(type, event)`` pairs whose
``sequence_number`` grows by one from 0: ``response.created``, ``response.in_progress``,
then per output item ``output_item.added`` → (a reasoning item: [``reasoning_summary_part.added``
→ ``reasoning_summary_text.delta``… when a summary is asked] and ``reasoning_text.delta``…,
closed by their ``.done`` events | ``content_part.added`` →
``output_text.delta``… → ``output_text.done`` → ``content_part.done`` | 
``function_call_arguments.delta``… → ``function_call_arguments.done`` | for a custom
tool's call, ``custom_tool_call_input.delta`` → ``.done`` with its whole input; a
``local_shell_call``, ``shell_call`` or ``apply_patch_call`` is added whole, when its call
is, then done: ``client_tools.py``) → ``output_item.done``, and last ``response.completed`` / ``.incomplete`` / ``.failed``.
While the model sends nothing (a long prompt's prefill), a ``keepalive`` event every
``stream_keepalive_seconds`` (15 by default: ``serving/keepalive.py``); the engine's refusals after ``response.created`` (the prompt too
long for the context, a full queue) end the stream with ``response.failed``.

With ``mcp`` tools (``serving/mcp/run.McpRun``) a response is several generations: a call of an MCP
tool is an ``mcp_call`` item (``output_item.added`` → ``mcp_call.in_progress`` →
``mcp_call_arguments.delta``… → ``.done``; the server runs it → ``mcp_call.completed`` /
``.failed`` → ``output_item.done`` with its output), or an ``mcp_approval_request`` that
ends the response; when every call of a generation was an MCP call that ran, the model
answers again with their outputs, in the same stream (OpenAI's order, as recorded from
its API).

A message's and a reasoning item's events are ``streamed_text.py``'s (this class builds on
it); the calls, the MCP rounds and the stream's beginning and end are here.

The final object is built from the same state the events were built from, and handed to
``save`` (which commits it) *before* the last event is sent: a follow-up request sent the
moment the stream ends finds the response exactly as it was streamed.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from typing import Any

import anyio

from ...backends.base import Stream
from ...errors import OpenAIError
from ...json.types import Json
from ..keepalive import EVERY, Silence
from . import objects
from .items import new_id
from .streamed_text import Event, StreamedItem, TextEvents

log = logging.getLogger(__name__)

# Calls of client_tools.py's tools other than functions: their fields come from the arguments.
_CLIENT_CALLS = ("custom_tool_call", "local_shell_call", "shell_call", "apply_patch_call")
# Those whose item is only valid whole (an action, an operation): added when their call is.
_ADDED_WHOLE = ("local_shell_call", "shell_call", "apply_patch_call")


def failure_code(failure: OpenAIError) -> str:
    """A failed response's ``error.code``: ``context_length_exceeded`` as OpenAI sends it (the
    code Codex reads as "out of room", and says so, where it retries any other code),
    ``rate_limit_exceeded`` for a 429 (Codex waits, then retries), else ``server_error``."""
    if failure.code == "context_length_exceeded":
        return failure.code
    return "rate_limit_exceeded" if failure.status == 429 else "server_error"


class ResponseStream(TextEvents):
    def __init__(
        self,
        response: Json,
        chunks: Stream[Json] | None,
        save: Callable[[Json], Awaitable[None]],
        prior: Any = None,
        tools: Any = None,
        sealing: Callable[[str], str] | None = None,
        client: Any = None,
        keepalive: float = EVERY,
    ) -> None:
        # Output made before generation (file_search.Retrieval, ``prior``): its ``items``
        # come first, its ``item_events()`` are sent before the model's.
        super().__init__(response, prior, sealing)
        self.chunks = chunks  # None: the first generation comes after ``tools``' approved calls
        self.save = save
        # The MCP tools' run (serving/mcp/run.McpRun): its ``listed`` items come next.
        self.tools = tools
        # The namespace, custom and client-executed tools (client_tools.ClientTools): a
        # call of one is its own item type.
        self.client = client
        self.keepalive = keepalive  # seconds with no event sent before a ``keepalive`` event
        self.output = [*(prior.items if prior is not None else []), *(tools.listed if tools is not None else [])]
        self.calls: dict[int, StreamedItem] = {}
        self.open_calls: list[StreamedItem] = []
        self.running: list[StreamedItem] = []  # MCP calls whose arguments are whole, not yet run
        self.usage: Json | None = None
        self.spent: Json | None = None  # the usage of the generations before this one
        self.finish_reason: str | None = None
        self.round_start = len(self.output)
        self.closed = False  # the last generation's items are closed already

    # --- function calls --------------------------------------------------------------------

    def _call_delta(self, delta: Json) -> list[Event]:
        events: list[Event] = []
        index = delta.get("index", 0)
        function = delta.get("function") or {}
        call = self.calls.get(index)
        if call is None:
            if self.message is not None:
                events += self._close_message("completed")
            name = function.get("name") or ""
            item = self.tools.item_for(name) if self.tools is not None else None
            if item is None and self.client is not None:
                item = self.client.open_item(name, delta.get("id") or new_id("call"))
            if item is None:
                item = objects.function_call_item(new_id("fc"), "in_progress", delta.get("id") or new_id("call"), name, "")
            call = self.calls[index] = StreamedItem(len(self.output), item)
            events += self._open_call(call)
        elif function.get("name") and call.item["type"] == "function_call":
            call.item["name"] += function["name"]
        if function.get("arguments"):
            events += self._arguments(call, function["arguments"])
        return events

    def _open_call(self, call: StreamedItem) -> list[Event]:
        self.output.append(call.item)
        self.open_calls.append(call)
        if call.item["type"] in _ADDED_WHOLE:
            return []
        events = [self._event("response.output_item.added", output_index=call.index, item=dict(call.item))]
        if call.item["type"] == "mcp_call":
            events.append(self._event("response.mcp_call.in_progress", output_index=call.index, item_id=call.item["id"]))
        return events

    def _arguments(self, call: StreamedItem, delta: str) -> list[Event]:
        call.text.append(delta)
        kind = {"function_call": "response.function_call_arguments.delta", "mcp_call": "response.mcp_call_arguments.delta"}
        if call.item["type"] not in kind:
            return []  # an approval request shows its arguments whole, when it is done
        return [self._event(kind[call.item["type"]], item_id=call.item["id"], output_index=call.index, delta=delta)]

    def _close_calls(self, status: str) -> list[Event]:
        """``status``: the answer's (``objects.call_status``)."""
        events = []
        for position, call in enumerate(self.open_calls):
            cut = objects.call_status(position, len(self.open_calls), status)
            item = call.item
            item["arguments"] = "".join(call.text)
            where = {"item_id": item["id"], "output_index": call.index}
            if item["type"] == "mcp_call":
                events.append(self._event("response.mcp_call_arguments.done", **where, arguments=item["arguments"]))
                if cut == "completed":
                    self.running.append(call)  # run, then done (``_run_calls``)
                    continue
                item["status"] = cut  # cut by the token limit: never run
            elif item["type"] == "function_call":
                item["status"] = cut
                if "namespace" in item:
                    self.client.finish(item, item["arguments"], cut)
                events.append(self._event("response.function_call_arguments.done", **where, name=item["name"], arguments=item["arguments"]))
            elif item["type"] in _CLIENT_CALLS:
                # A custom or client-executed tool's call: its fields from the whole arguments.
                arguments = item.pop("arguments")
                self.client.finish(item, arguments, cut)
                if item["type"] in _ADDED_WHOLE:
                    events.append(self._event("response.output_item.added", output_index=call.index, item=dict(item)))
                if item["type"] == "custom_tool_call":
                    events.append(self._event("response.custom_tool_call_input.delta", **where, delta=item["input"]))
                    events.append(self._event("response.custom_tool_call_input.done", **where, input=item["input"]))
            events.append(self._event("response.output_item.done", output_index=call.index, item=item))
        self.open_calls = []
        return events

    async def _run_calls(self) -> Stream[Event]:
        """Run the MCP calls whose arguments are whole, one after the other, in order."""
        while self.running:
            call = self.running[0]
            await self.tools.run(call.item)
            self.running.pop(0)
            ended = "response.mcp_call.completed" if call.item["status"] == "completed" else "response.mcp_call.failed"
            yield self._event(ended, item_id=call.item["id"], output_index=call.index)
            yield self._event("response.output_item.done", output_index=call.index, item=call.item)

    def _listed_events(self) -> list[Event]:
        """The servers listed for this response (before the stream started), back to back."""
        events = []
        first = len(self.prior.items) if self.prior is not None else 0
        for index, item in enumerate(self.tools.listed if self.tools is not None else [], start=first):
            where = {"item_id": item["id"], "output_index": index}
            events += [
                self._event("response.output_item.added", output_index=index, item={**item, "tools": []}),
                self._event("response.mcp_list_tools.in_progress", **where),
                self._event("response.mcp_list_tools.completed", **where),
                self._event("response.output_item.done", output_index=index, item=item),
            ]
        return events

    async def _approved_calls(self) -> Stream[Event]:
        """The calls the client approved in this turn's input, before any generation."""
        for item in self.tools.pending:
            call = StreamedItem(len(self.output), {**item, "arguments": ""})
            for event in [*self._open_call(call), *self._arguments(call, item["arguments"]), *self._close_calls("completed")]:
                yield event
        async for event in self._run_calls():
            yield event

    # --- the stream ----------------------------------------------------------------------

    def _chunk(self, chunk: Json) -> list[Event]:
        self.usage = chunk.get("usage") or self.usage
        events: list[Event] = []
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            logprobs = (choice.get("logprobs") or {}).get("content") or []
            # DeepSeek's and llama.cpp's name, or vLLM's newer one (an upstream's chunks).
            thought = delta.get("reasoning_content") or delta.get("reasoning")
            if isinstance(thought, str) and thought:
                events += self._reasoning_delta(thought)
            if self.thought is not None and (delta.get("content") or logprobs or delta.get("tool_calls")):
                events += self._close_reasoning()
            if delta.get("content") or logprobs:
                events += self._text_delta(delta.get("content") or "", logprobs)
            for call in delta.get("tool_calls") or []:
                events += self._call_delta(call)
            self.finish_reason = choice.get("finish_reason") or self.finish_reason
        return events

    def _close(self, status: str) -> list[Event]:
        if len(self.output) == self.round_start:
            # Nothing generated: still one (empty) message, as OpenAI answers.
            events = self._open_message()
            return events + self._close_message(status)
        events = self._close_reasoning(status)
        events += self._close_message(status) if self.message is not None else []
        return events + self._close_calls(status)

    def _cut_off(self) -> None:
        """The open items as far as they were sent (no more events will close them)."""
        if self.thought is not None:
            text = "".join(self.thought.text)
            self.thought.item.update(status="incomplete", summary=[], content=[{"type": "reasoning_text", "text": text}])
        if self.message is not None:
            text = "".join(self.message.text)
            self.message.item.update(status="incomplete", content=[objects.text_part(text, self.message.logprobs)])
        for call in self.open_calls:
            if call.item["type"] in _CLIENT_CALLS:
                self.client.finish(call.item, "".join(call.text), "incomplete")
                call.item.pop("arguments", None)
            else:
                call.item.update(status="incomplete", arguments="".join(call.text))
        for call in self.running:
            call.item["status"] = "incomplete"

    async def _next_generation(self) -> Stream[Json] | None:
        """The model's next answer when the last one's calls all ran (``McpRun.next_round``)."""
        generation = self.output[self.round_start :]
        self.spent, self.usage = objects.added_usage(self.spent, self.usage), None
        chunks = await self.tools.next_round(self.output, generation, self.spent)
        if chunks is not None:
            self.message, self.calls, self.open_calls, self.thought = None, {}, [], None
            self.finish_reason, self.closed, self.round_start = None, False, len(self.output)
        return chunks

    async def _store(self, response: Json) -> None:
        # Shielded: a client that hangs up now must not lose the answer it was sent.
        with anyio.CancelScope(shield=True):
            await self.save(response)

    async def events(self) -> Stream[Event]:
        yield self._event("response.created", response=self.response)
        yield self._event("response.in_progress", response=self.response)
        for kind, fields in self.prior.item_events() if self.prior is not None else []:
            yield self._event(kind, **fields)
        for event in self._listed_events():
            yield event
        ended = False
        failure: OpenAIError | None = None
        try:
            if self.chunks is None:
                async for event in self._approved_calls():
                    yield event
                self.chunks = await self._next_generation()
            while self.chunks is not None:
                # The engine's refusals come at the first chunk (a local stream is unstarted:
                # the context, the queue), after ``response.created``; a long prefill before
                # it is kept alive with OpenAI's own event (serving/keepalive.py).
                silence = Silence(self.keepalive)
                async with aclosing(silence.ticking(self.chunks)) as chunks:
                    async for chunk in chunks:
                        made = [self._event("keepalive")] if chunk is None else self._chunk(chunk)
                        if made:
                            silence.sent()
                        for event in made:
                            yield event
                if self.tools is None or self.finish_reason == "length" or not self.open_calls:
                    break
                closing = self._close_reasoning()
                closing += self._close_message("completed") if self.message is not None else []
                closing += self._close_calls("completed")
                # Recorded before the client sees them whole: an approval may come back at once.
                await self.tools.issue(self.output[self.round_start :])
                for event in closing:
                    yield event
                async for event in self._run_calls():
                    yield event
                self.closed = True
                await self.chunks.aclose()
                self.chunks = await self._next_generation()
            ended = True
        except OpenAIError as error:
            ended, failure = True, error
        finally:
            if self.chunks is not None:
                await self.chunks.aclose()
            if not ended and self.output:
                # The client went away: keep what it was sent, marked incomplete.
                self._cut_off()
                try:
                    await self._store({**self.response, "status": "incomplete", "output": self.output})
                except Exception:
                    log.exception("could not store an interrupted response")
        if failure is not None:
            log.warning("response stream failed: %s", failure.message)
            for event in [] if self.closed else self._close("incomplete"):
                yield event
            response = objects.failed(self.response, self.output, failure_code(failure), failure.message)
            await self._store(response)
            yield self._event("response.failed", response=response)
            return
        status = "incomplete" if self.finish_reason == "length" else "completed"
        for event in [] if self.closed else self._close(status):
            yield event
        response = objects.finished(self.response, self.output, objects.added_usage(self.spent, self.usage), self.finish_reason)
        await self._store(response)
        kind = "response.incomplete" if response["status"] == "incomplete" else "response.completed"
        yield self._event(kind, response=response)
