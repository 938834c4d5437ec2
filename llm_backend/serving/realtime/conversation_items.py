"""A Realtime conversation's items: added (``previous_item_id`` honoured), found, deleted,
truncated, and read as the chat model reads them - bounded in their number
(``realtime_max_items``) and in the memory they hold together (``realtime_conversation_bytes``,
counted as Python holds them: issue #39 filled a session with 8 MiB items, ~8.9 GB a
session at 1000 of them). An item the model writes grows while it is written, and is
counted when it is done (its size follows ``max_output_tokens``); an item past the bounds is
refused with ``conversation_full`` naming it, and nothing is added.
"""

from __future__ import annotations

from ...errors import bad_request
from ...json.types import Json
from ..responses.items import chat_messages
from ..mcp.calls import replayable
from ..mcp.servers import Catalog
from .events import held_bytes


class ConversationItems:
    def __init__(self, max_items: int, max_bytes: int) -> None:
        self.max_items = max_items
        self.max_bytes = max_bytes
        self.items: list[Json] = []
        self.sizes: dict[str, int] = {}  # held bytes per item id, as last counted
        self.bytes = 0

    def __iter__(self):
        return iter(self.items)

    def find(self, item_id: str) -> Json:
        for item in self.items:
            if item["id"] == item_id:
                return item
        raise bad_request(f"Item with item_id not found: {item_id}", "item_id", "item_not_found")

    def add(self, item: Json, previous: str | None = None, param: str = "item") -> str | None:
        """Insert ``item`` after ``previous`` (else last), within the bounds; the id of the
        item before it. Nothing awaits here: a check and its insert cannot be split."""
        size = self.check(item, param)
        index = len(self.items) if previous is None else self.items.index(self.find(previous)) + 1
        self.items.insert(index, item)
        self.sizes[item["id"]] = size
        self.bytes += size
        return self.items[index - 1]["id"] if index else None

    def check(self, item: Json, param: str = "item") -> int:
        """Refuse ``item`` unless the conversation has room for it (a new id, within the
        bounds); its size."""
        if len(self.items) >= self.max_items:
            raise bad_request(
                f"A conversation holds at most {self.max_items} items (realtime_max_items); delete some.", param, "conversation_full"
            )
        if any(existing["id"] == item["id"] for existing in self.items):
            raise bad_request(f"Item with id already exists: {item['id']}", f"{param}.id", "item_already_exists")
        size = held_bytes(item)
        self._check(size, param)
        return size

    def _check(self, size: int, param: str) -> None:
        if self.bytes + size > self.max_bytes:
            raise bad_request(
                f"A conversation's items may hold at most {self.max_bytes} bytes (realtime_conversation_bytes); "
                f"they hold {self.bytes} and this one would take {size}. Delete some.",
                param,
                "conversation_full",
            )

    def recount(self, item: Json) -> None:
        """Count an item again once it has grown (an answer written, a transcript heard)."""
        if item["id"] in self.sizes:
            size = held_bytes(item)
            self.bytes += size - self.sizes[item["id"]]
            self.sizes[item["id"]] = size

    def delete(self, item_id: str) -> None:
        self.items.remove(self.find(item_id))
        self.bytes -= self.sizes.pop(item_id, 0)

    def before(self, item: Json) -> str | None:
        """The id of the item before ``item``."""
        index = next(index for index, existing in enumerate(self.items) if existing is item)
        return self.items[index - 1]["id"] if index else None

    @property
    def last_id(self) -> str | None:
        return self.items[-1]["id"] if self.items else None

    def clear(self) -> None:
        self.items, self.sizes, self.bytes = [], {}, 0

    def messages(self, instructions: str, catalog: Catalog | None = None) -> list[Json]:
        """The conversation as the chat model reads it: read as the Responses layer reads its
        items (``responses/items.chat_messages``), a spoken part as its transcript, an MCP
        call as the call of its function (``catalog``'s name) and its output
        (``serving/mcp/calls.replayable``)."""
        readable: list[Json] = []
        for item in replayable(self.items, catalog):
            if item["type"] == "message":
                content = item.get("content") or []
                text = " ".join(part.get("text") or part.get("transcript") or "" for part in content).strip()
                images = [
                    {"type": "input_image", "image_url": part["image_url"], "detail": part.get("detail") or "auto"}
                    for part in content if part.get("type") == "input_image"
                ]
                if text or images:  # a turn nobody could hear says nothing
                    said = [{"type": "input_text", "text": text}] if text else []
                    readable.append({"type": "message", "role": item["role"], "content": [*images, *said]})
            else:  # function calls (their call_id optional here) and outputs
                readable.append({**item, "call_id": item.get("call_id") or item["id"]})
        system = [{"role": "system", "content": instructions}] if instructions else []
        return [*system, *chat_messages(readable)]


def truncated(item: Json, content_index: int, end_ms: int, sent_ms: int) -> None:
    """Cut an assistant audio item's transcript to the audio the client played (about: in
    proportion to its words)."""
    content = item.get("content") or []
    if not 0 <= content_index < len(content):
        raise bad_request(
            f"Invalid 'content_index': {content_index}. The item has {len(content)} content part(s).", "content_index", "invalid_value"
        )
    part = content[content_index]
    words = (part.get("transcript") or "").split()
    part["transcript"] = " ".join(words[: round(len(words) * end_ms / sent_ms)] if sent_ms else [])
