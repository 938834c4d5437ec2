"""OpenAI's list shape for stored objects: the envelope, and the bounds of ``limit``."""

from __future__ import annotations

from typing import Literal

from .. import errors
from ..errors import bad_request
from ..json.types import Json

LIST_MAX_LIMIT = 100

Order = Literal["asc", "desc"]


def check_limit(limit: int) -> int:
    if not 1 <= limit <= LIST_MAX_LIMIT:
        raise bad_request(
            f"Invalid 'limit': integer out of range. Expected a value between 1 and {LIST_MAX_LIMIT}, "
            f"but got {limit} instead.",
            "limit",
            "integer_out_of_range",
        )
    return limit


def list_order(order: str | None, default: Order = "desc") -> Order:
    """A list's ``order`` as the stores take it (the spec allows ``asc`` and ``desc``):
    anything but ``asc`` lists newest first; none, ``default``."""
    if order is None:
        return default
    return "asc" if order == "asc" else "desc"


def list_object(data: list[Json], has_more: bool) -> Json:
    """OpenAI's list envelope (``first_id``/``last_id`` are required strings: empty when empty)."""
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else "",
        "last_id": data[-1]["id"] if data else "",
        "has_more": has_more,
    }


def page(items: list[Json], after: str | None, limit: int, order: str, kind: str = "item") -> Json:
    """A page of ``items`` (oldest first, each with an ``id``) in ``order``, after the one
    whose id is ``after`` (404 naming ``after`` when there is none)."""
    ordered = list(reversed(items)) if order == "desc" else list(items)
    if after is not None:
        ids = [item["id"] for item in ordered]
        if after not in ids:
            raise errors.not_found(kind, after, "after")
        ordered = ordered[ids.index(after) + 1 :]
    return list_object(ordered[:limit], len(ordered) > limit)
