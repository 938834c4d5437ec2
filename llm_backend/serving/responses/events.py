"""Chat completion chunks → the Responses streaming protocol.

One ``ResponseStream`` per streamed response. It yields ``(type, event)`` pairs whose
``sequence_number`` grows by one from 0: ``response.created``, ``response.in_progress``,
then per output item ``output_item.added`` → (``content_part.added`` →
``output_text.delta``… → ``output_text.done`` → ``content_part.done`` | 
``function_call_arguments.delta``… → ``function_call_arguments.done``) →
``output_item.done``, and last ``response.completed`` / ``.incomplete`` / ``.failed``.

The final object is built from the same state the events were built from, and handed to
``save`` (which commits it) *before* the last event is sent: a follow-up request sent the
moment the stream ends finds the response exactly as it was streamed.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio

from ...errors import OpenAIError
from . import objects
from .items import new_id

log = logging.getLogger(__name__)

Json = dict[str, Any]
Event = tuple[str, Json]


class _Item:
    """An output item being streamed: a message, or a function call."""

    def __init__(self, index: int, item: Json) -> None:
        self.index = index
        self.item = item
        self.text: list[str] = []
        self.logprobs: list[Json] = []


class ResponseStream:
    def __init__(
        self, response: Json, chunks: AsyncIterator[Json], save: Callable[[Json], Awaitable[None]], prior: Any = None
    ) -> None:
        self.response = response
        self.chunks = chunks
        self.save = save
        self.sequence = 0
        # Output made before generation (file_search.Retrieval): its ``items`` come first,
        # its ``item_events()`` are sent before the model's, and its ``annotations(text)``
        # are the message's.
        self.prior = prior
        self.output: list[Json] = list(prior.items) if prior is not None else []
        self.message: _Item | None = None
        self.calls: dict[int, _Item] = {}
        self.open_calls: list[_Item] = []
        self.usage: Json | None = None
        self.finish_reason: str | None = None

    def _event(self, kind: str, **fields: Any) -> Event:
        event = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return kind, event

    # --- messages ------------------------------------------------------------------------

    def _open_message(self) -> list[Event]:
        self.message = _Item(len(self.output), objects.message_item(new_id("msg"), "in_progress", []))
        self.output.append(self.message.item)
        item_id = self.message.item["id"]
        return [
            self._event("response.output_item.added", output_index=self.message.index, item=dict(self.message.item, content=[])),
            self._event(
                "response.content_part.added",
                item_id=item_id,
                output_index=self.message.index,
                content_index=0,
                part=objects.text_part(),
            ),
        ]

    def _text_delta(self, text: str, logprobs: list[Json]) -> list[Event]:
        events = self._open_message() if self.message is None else []
        self.message.text.append(text)
        self.message.logprobs.extend(logprobs)
        events.append(
            self._event(
                "response.output_text.delta",
                item_id=self.message.item["id"],
                output_index=self.message.index,
                content_index=0,
                delta=text,
                logprobs=logprobs,
            )
        )
        return events

    def _close_message(self, status: str) -> list[Event]:
        message, self.message = self.message, None
        text = "".join(message.text)
        part = objects.text_part(text, message.logprobs)
        message.item.update(status=status, content=[part])
        where = {"item_id": message.item["id"], "output_index": message.index, "content_index": 0}
        annotated = []
        if self.prior is not None:
            part["annotations"] = self.prior.annotations(text)
            annotated = [
                self._event("response.output_text.annotation.added", **where, annotation_index=index, annotation=annotation)
                for index, annotation in enumerate(part["annotations"])
            ]
        return [
            *annotated,
            self._event("response.output_text.done", **where, text=text, logprobs=message.logprobs),
            self._event("response.content_part.done", **where, part=part),
            self._event("response.output_item.done", output_index=message.index, item=message.item),
        ]

    # --- function calls --------------------------------------------------------------------

    def _call_delta(self, delta: Json) -> list[Event]:
        events: list[Event] = []
        index = delta.get("index", 0)
        function = delta.get("function") or {}
        call = self.calls.get(index)
        if call is None:
            if self.message is not None:
                events += self._close_message("completed")
            item = objects.function_call_item(
                new_id("fc"), "in_progress", delta.get("id") or new_id("call"), function.get("name") or "", ""
            )
            call = self.calls[index] = _Item(len(self.output), item)
            self.output.append(item)
            self.open_calls.append(call)
            events.append(self._event("response.output_item.added", output_index=call.index, item=dict(item)))
        elif function.get("name"):
            call.item["name"] += function["name"]
        if function.get("arguments"):
            call.text.append(function["arguments"])
            events.append(
                self._event(
                    "response.function_call_arguments.delta",
                    item_id=call.item["id"],
                    output_index=call.index,
                    delta=function["arguments"],
                )
            )
        return events

    def _close_calls(self, status: str) -> list[Event]:
        """``status``: the answer's (``objects.call_status``)."""
        events = []
        for position, call in enumerate(self.open_calls):
            cut = objects.call_status(position, len(self.open_calls), status)
            call.item.update(status=cut, arguments="".join(call.text))
            events.append(
                self._event(
                    "response.function_call_arguments.done",
                    item_id=call.item["id"],
                    output_index=call.index,
                    name=call.item["name"],
                    arguments=call.item["arguments"],
                )
            )
            events.append(self._event("response.output_item.done", output_index=call.index, item=call.item))
        self.open_calls = []
        return events

    # --- the stream ----------------------------------------------------------------------

    def _chunk(self, chunk: Json) -> list[Event]:
        self.usage = chunk.get("usage") or self.usage
        events: list[Event] = []
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            logprobs = (choice.get("logprobs") or {}).get("content") or []
            if delta.get("content") or logprobs:
                events += self._text_delta(delta.get("content") or "", logprobs)
            for call in delta.get("tool_calls") or []:
                events += self._call_delta(call)
            self.finish_reason = choice.get("finish_reason") or self.finish_reason
        return events

    def _close(self, status: str) -> list[Event]:
        if len(self.output) == (len(self.prior.items) if self.prior is not None else 0):
            # Nothing generated: still one (empty) message, as OpenAI answers.
            events = self._open_message()
            return events + self._close_message(status)
        events = self._close_message(status) if self.message is not None else []
        return events + self._close_calls(status)

    def _cut_off(self) -> None:
        """The open items as far as they were sent (no more events will close them)."""
        if self.message is not None:
            text = "".join(self.message.text)
            self.message.item.update(status="incomplete", content=[objects.text_part(text, self.message.logprobs)])
        for call in self.open_calls:
            call.item.update(status="incomplete", arguments="".join(call.text))

    async def _store(self, response: Json) -> None:
        # Shielded: a client that hangs up now must not lose the answer it was sent.
        with anyio.CancelScope(shield=True):
            await self.save(response)

    async def events(self) -> AsyncIterator[Event]:
        yield self._event("response.created", response=self.response)
        yield self._event("response.in_progress", response=self.response)
        for kind, fields in self.prior.item_events() if self.prior is not None else []:
            yield self._event(kind, **fields)
        ended = False
        failure: OpenAIError | None = None
        try:
            async for chunk in self.chunks:
                for event in self._chunk(chunk):
                    yield event
            ended = True
        except OpenAIError as error:
            ended, failure = True, error
        finally:
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
            for event in self._close("incomplete"):
                yield event
            code = "rate_limit_exceeded" if failure.status == 429 else "server_error"
            response = objects.failed(self.response, self.output, code, failure.message)
            await self._store(response)
            yield self._event("response.failed", response=response)
            return
        status = "incomplete" if self.finish_reason == "length" else "completed"
        for event in self._close(status):
            yield event
        response = objects.finished(self.response, self.output, self.usage, self.finish_reason)
        await self._store(response)
        kind = "response.incomplete" if response["status"] == "incomplete" else "response.completed"
        yield self._event(kind, response=response)
