"""The text a streamed response's model writes: its message and its reasoning item, each
opened by its first delta, grown by the deltas, and closed with its final shape.

``events.ResponseStream`` builds on this: the calls, the MCP rounds and the stream's own
beginning and end are its job; what a message or a reasoning item's events look like is
this module's, so that each reads in one sitting. The sequence numbers are one counter for
both (``_event``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ...json.types import Json
from . import objects, reasoning
from .items import new_id

Event = tuple[str, Json]


class StreamedItem:
    """An output item being streamed: a message, a reasoning item, or a call."""

    def __init__(self, index: int, item: Json) -> None:
        self.index = index
        self.item = item
        self.text: list[str] = []
        self.logprobs: list[Json] = []


class TextEvents:
    """A response's output and its event counter, with the message and reasoning items' events."""

    def __init__(self, response: Json, prior: Any, sealing: Callable[[str], str] | None) -> None:
        self.response = response
        self.sealing = sealing  # how a reasoning item's encrypted_content is made, if asked (reasoning.py)
        # Output made before generation (file_search.Retrieval): its ``annotations(text)``
        # are the message's.
        self.prior = prior
        self.sequence = 0
        self.output: list[Json] = []
        self.message: StreamedItem | None = None
        self.thought: StreamedItem | None = None  # the reasoning item being streamed

    def _event(self, kind: str, **fields: Any) -> Event:
        event = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return kind, event

    # --- messages ------------------------------------------------------------------------

    def _open_message(self) -> list[Event]:
        self.message = StreamedItem(len(self.output), objects.message_item(new_id("msg"), "in_progress", []))
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
        message = self.message
        assert message is not None  # opened above
        message.text.append(text)
        message.logprobs.extend(logprobs)
        events.append(
            self._event(
                "response.output_text.delta",
                item_id=message.item["id"],
                output_index=message.index,
                content_index=0,
                delta=text,
                logprobs=logprobs,
            )
        )
        return events

    def _close_message(self, status: str) -> list[Event]:
        message, self.message = self.message, None
        if message is None:
            return []
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

    # --- reasoning -----------------------------------------------------------------------

    def _reasoning_delta(self, text: str) -> list[Event]:
        events: list[Event] = []
        summary = reasoning.summarized(self.response)
        if self.thought is None:
            item = reasoning.output_item("", "in_progress", self.response, None)
            item.update(summary=[], content=[])
            self.thought = StreamedItem(len(self.output), item)
            self.output.append(item)
            events.append(self._event("response.output_item.added", output_index=self.thought.index, item=dict(item)))
            if summary:
                events.append(self._event(
                    "response.reasoning_summary_part.added", **self._thought_at(), summary_index=0,
                    part={"type": "summary_text", "text": ""},
                ))
        assert self.thought is not None  # opened above
        self.thought.text.append(text)
        if summary:
            events.append(self._event("response.reasoning_summary_text.delta", **self._thought_at(), summary_index=0, delta=text))
        events.append(self._event("response.reasoning_text.delta", **self._thought_at(), content_index=0, delta=text))
        return events

    def _thought_at(self) -> Json:
        assert self.thought is not None  # asked only while a thought streams
        return {"item_id": self.thought.item["id"], "output_index": self.thought.index}

    def _close_reasoning(self, status: str = "completed") -> list[Event]:
        if self.thought is None:
            return []
        text = "".join(self.thought.text)
        where = self._thought_at()
        events = []
        if reasoning.summarized(self.response):
            events += [
                self._event("response.reasoning_summary_text.done", **where, summary_index=0, text=text),
                self._event("response.reasoning_summary_part.done", **where, summary_index=0, part={"type": "summary_text", "text": text}),
            ]
        events.append(self._event("response.reasoning_text.done", **where, content_index=0, text=text))
        item = reasoning.output_item(text, status, self.response, self.sealing, self.thought.item["id"])
        self.thought.item.clear()
        self.thought.item.update(item)  # the same object in ``output``
        events.append(self._event("response.output_item.done", output_index=self.thought.index, item=self.thought.item))
        self.thought = None
        return events
