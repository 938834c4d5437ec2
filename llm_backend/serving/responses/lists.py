"""OpenAI's list envelopes for input items and conversation items."""

from __future__ import annotations

from typing import Any

from ...errors import OpenAIError

Json = dict[str, Any]


def item_list(data: list[Json], has_more: bool) -> Json:
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else "",
        "last_id": data[-1]["id"] if data else "",
        "has_more": has_more,
    }


def page(items: list[Json], after: str | None, limit: int, order: str) -> Json:
    """A page of ``items`` (oldest first) in ``order`` after the item ``after``."""
    ordered = list(reversed(items)) if order == "desc" else list(items)
    if after is not None:
        ids = [item["id"] for item in ordered]
        if after not in ids:
            raise OpenAIError(404, f"No item found with id '{after}'.", param="after", code="not_found")
        ordered = ordered[ids.index(after) + 1 :]
    return item_list(ordered[:limit], len(ordered) > limit)
