"""The most a request can cost, read from its body before it is served: what ``meter.py``
holds against a hard spend limit until the answer's real cost replaces it.

- **Output**: the request's cap (``max_completion_tokens``, ``max_tokens``,
  ``max_output_tokens``; a Realtime response's ``max_response_output_tokens``) times its
  choices (``n``, ``best_of``); no cap: the model's room (its context: a local model's
  ``n_ctx``, a price's ``context_window``); neither: unknown (the meter then holds all that
  remains of the limit).
- **Input**: at most one token per byte of the body's text (a token is at least one byte of
  its text), each key and string counted in UTF-8 bytes and every value given a few more
  for the chat template's own tokens around it; never more than the model's room, where it
  is known (no longer prompt is served: a data URL's megabytes are not its tokens). Not in
  the body, so not held: a persona's
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

from ...storage.usage import Measured
from ..usage_families import FAMILIES, text_bytes

__all__ = ["most_usage", "text_bytes"]


def most_usage(family: str, body: dict | None, room: int | None, input_tokens: int | None = None) -> Measured | None:
    """The largest usage ``body`` can be answered with; None when it cannot be bounded (no
    cap and no room known); none at all when nothing is held for it (a transcription, a
    request without a JSON body). ``input_tokens``: the input's bound when ``body`` is only
    what was read of a body forwarded unread (its size in bytes). Each family's rule is its
    row's (usage_families.py)."""
    return FAMILIES[family].most(body, room, input_tokens)
