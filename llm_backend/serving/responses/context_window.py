"""What a turn's input does when it outgrows the model's context window.

``truncation: "auto"``: when a turn's input (its history included) does not fit the
model's context, the oldest items are dropped until it does, as OpenAI does; ``disabled``
(the default) leaves a too-long input to its 400 ``context_length_exceeded``.

"Fits" leaves room for the answer: ``max_output_tokens``, or a quarter of the context when
it is not given, at most half the context. The prompt is counted as the model reads it
(``Backend.prompt_tokens``: chat template, instructions and tools included), at most
log2(items) + 1 times (a binary search over how many items go). The items are only left out
of what the model reads: the turn's input is stored as it was sent. A call output whose call
was dropped goes too (a tool message must follow its call). The latest item is always kept:
if it alone does not fit, the answer is the 400 it would have been.

An upstream's context is not known here (``responses: local`` upstreams): ``auto`` is
refused for them with a 400 naming ``truncation``, never accepted and ignored.

``context_management`` (``compaction`` at ``compact_threshold`` tokens): OpenAI compacts
the conversation on its side once the prompt passes the threshold. A prompt below it
needs nothing, which is what happens here; one above it is refused with a 400 naming the
parameter (compact it with ``POST /v1/responses/compact`` first), never answered
uncompacted as if the parameter had not been sent.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from ...json.types import Json
from . import request

OUTPUTS = ("function_call_output",)


def _without_orphans(items: list[Json]) -> list[Json]:
    """``items`` without leading call outputs (their calls were dropped)."""
    start = 0
    while start < len(items) - 1 and items[start].get("type") in OUTPUTS:
        start += 1
    return items[start:]


async def check_compaction(backend: Any, body: Json, chat: Json) -> None:
    """The 400 for a prompt past ``context_management``'s compaction threshold (see above)."""
    entries = body.get("context_management") or []
    for index, entry in enumerate(entries):
        if entry.get("type") != "compaction":
            raise request.unsupported(f"context_management[{index}].type", f"no '{entry.get('type')}' context management")
    thresholds = [entry["compact_threshold"] for entry in entries if entry.get("compact_threshold") is not None]
    if not thresholds:
        return
    tokens = await backend.prompt_tokens(body["model"], chat) if backend.context_length(body["model"]) else None
    if tokens is None:
        raise request.unsupported("context_management", "the prompt of an upstream's model is not counted here")
    if tokens > min(thresholds):
        raise request.unsupported(
            "context_management",
            f"the prompt ({tokens} tokens) is past the compaction threshold ({min(thresholds)}), and conversations "
            "are not compacted on the fly here: compact them with POST /v1/responses/compact",
        )


async def fit(backend: Any, body: Json, history: list[Json], turn: list[Json]) -> tuple[list[Json], list[Json]]:
    """The history and turn items the model reads: unchanged unless ``truncation`` is
    ``auto`` and they do not fit, else without their oldest items."""
    if body.get("truncation") != "auto":
        return history, turn
    model_id = body["model"]
    n_ctx = backend.context_length(model_id)
    if n_ctx is None:
        raise request.unsupported("truncation", "'auto' needs the model's context, which an upstream keeps to itself")
    reserve = min(body.get("max_output_tokens") or n_ctx // 4, n_ctx // 2)
    budget = n_ctx - reserve
    items = [*history, *turn]

    def kept(dropped: int) -> list[Json]:
        return _without_orphans(items[dropped:])

    count: Callable[[list[Json]], Awaitable[int]] = lambda rest: backend.prompt_tokens(
        model_id, request.chat_request(body, [], rest, stream=False)
    )
    if len(items) < 2 or await count(items) <= budget:
        return history, turn
    low, high = 1, len(items) - 1  # the fewest items to drop: somewhere in [low, high]
    while low < high:
        middle = (low + high) // 2
        if await count(kept(middle)) <= budget:
            high = middle
        else:
            low = middle + 1
    rest = kept(low)
    split = max(0, len(rest) - len(turn))
    return rest[:split], rest[split:]
