"""Pages of input items and conversation items, in OpenAI's list envelope."""

from __future__ import annotations

from typing import Any

from ... import errors
from ..pages import list_object

Json = dict[str, Any]


def page(items: list[Json], after: str | None, limit: int, order: str) -> Json:
    """A page of ``items`` (oldest first) in ``order`` after the item ``after``."""
    ordered = list(reversed(items)) if order == "desc" else list(items)
    if after is not None:
        ids = [item["id"] for item in ordered]
        if after not in ids:
            raise errors.not_found("item", after, "after")
        ordered = ordered[ids.index(after) + 1 :]
    return list_object(ordered[:limit], len(ordered) > limit)
