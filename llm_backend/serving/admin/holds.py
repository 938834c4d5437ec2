"""The most a request can cost, read from its body before it is served: what ``meter.py``
holds against a hard spend limit until the answer's real cost replaces it.

- **Output**: the request's cap (``max_completion_tokens``, ``max_tokens``,
  ``max_output_tokens``; a Realtime response's ``max_response_output_tokens``) times its
  choices (``n``, ``best_of``); no cap: the model's room (its context: a local model's
  ``n_ctx``, a price's ``context_window``); neither: unknown (the meter then holds all that
  remains of the limit).
- **Input**: at most one token per byte of the body's text (a token is at least one byte of
  its text), each key and string counted in UTF-8 bytes and every value given a few more
  for the chat template's own tokens around it. Not in the body, so not held: a persona's
  system prompt, an image's tokens named by URL, a Realtime conversation's earlier items.
- **A forwarded Response** (a pure gateway forwards the Responses API unread): its
  ``max_output_tokens`` (or the room) and its body's bytes as its input, at most a token a
  byte (``http/forwarded_usage.py``); what the upstream keeps of a conversation is not held.
- **Other families**: speech by its ``input``'s characters; embeddings and moderations by
  their input alone; a forwarded image operation by its ``n`` images (default 1, OpenAI's),
  priced per image; a transcription is not held (its seconds are known once it is
  decoded): counted after its answer, as before reservations.
"""

from __future__ import annotations

from typing import Any

from ...storage.usage import AUDIO_SPEECHES, AUDIO_TRANSCRIPTIONS, COMPLETIONS, IMAGES, Measured

# The caps a body may name for its output, per answer (the first present counts).
OUTPUT_CAPS = ("max_completion_tokens", "max_tokens", "max_output_tokens", "max_response_output_tokens")
# Template tokens around each value (a message's role markers, a tool's punctuation).
PER_VALUE = 4


def text_bytes(value: Any) -> int:
    """Every key and string of ``value`` in UTF-8 bytes, and ``PER_VALUE`` for each value."""
    total, stack = 0, [value]
    while stack:
        item = stack.pop()
        total += PER_VALUE
        if isinstance(item, str):
            total += len(item) if item.isascii() else len(item.encode("utf-8", "surrogatepass"))
        elif isinstance(item, dict):
            total += sum(len(key.encode("utf-8", "surrogatepass")) for key in item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return total


def _count(body: dict, name: str) -> int | None:
    value = body.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def most_usage(family: str, body: dict | None, room: int | None, input_tokens: int | None = None) -> Measured | None:
    """The largest usage ``body`` can be answered with; None when it cannot be bounded (no
    cap and no room known); none at all when nothing is held for it (a transcription, a
    request without a JSON body). ``input_tokens``: the input's bound when ``body`` is only
    what was read of a body forwarded unread (its size in bytes)."""
    if family == IMAGES:  # the body's images (its ``n``: ``forwarded_usage``), each at its price
        return Measured(family, calls=_count(body or {}, "n") or 1)
    if body is None or family == AUDIO_TRANSCRIPTIONS:
        return Measured(family)
    if family == AUDIO_SPEECHES:
        text = body.get("input")
        return Measured(family, characters=len(text) if isinstance(text, str) else 0)
    input_tokens = text_bytes(body) if input_tokens is None else input_tokens
    if family != COMPLETIONS:  # embeddings, moderations: input alone
        return Measured(family, input_tokens=input_tokens)
    cap = next((count for name in OUTPUT_CAPS if (count := _count(body, name)) is not None), None)
    if room is not None:
        cap = room if cap is None else min(cap, room)
    if cap is None:
        return None
    choices = max(_count(body, "n") or 1, _count(body, "best_of") or 1)
    return Measured(family, input_tokens=input_tokens, output_tokens=cap * choices)
