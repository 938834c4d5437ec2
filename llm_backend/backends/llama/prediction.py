"""Predicted outputs for local models: ``prediction`` checked as OpenAI checks it, and its text.

OpenAI's guide lists what a prediction cannot be combined with: ``n`` above 1, ``logprobs``,
``presence_penalty`` or ``frequency_penalty`` above 0, audio (input or output) and
modalities other than text, ``max_completion_tokens``, and tools (function calling). Each
is refused here too, with a 400 naming it (``unsupported_parameter``, or
``unsupported_value`` where only some values are refused), before anything runs. The
engine verifies the prediction's tokens as drafts (engine/drafts.py), only while they pay:
a sampled answer keeps the model's distribution, a greedy one is the answer without a
prediction bit for bit where the device computes drafted rows as rows alone (these cores:
always; the model setting ``prediction_exact`` makes it so everywhere, engine/exactness.py),
and elsewhere as docs/SCALING.md measured it.
"""

from __future__ import annotations

from ...errors import not_with_prediction as _unsupported
from ...errors import value_not_with_prediction as _above_zero
from ...json.types import Json

# A prediction longer than the context can never be used past it; this many characters a
# token is more than any tokenizer gives (budgets.MAX_CHARS_PER_TOKEN).
CHARS_PER_TOKEN = 64


def check(request: Json) -> None:
    """Refuse what OpenAI refuses beside a prediction (a request without one passes)."""
    if request.get("prediction") is None:
        return
    if (request.get("n") or 1) > 1:
        raise _above_zero("n", request["n"], "1")
    for param in ("presence_penalty", "frequency_penalty"):
        if (request.get(param) or 0) > 0:
            raise _above_zero(param, request[param], "values <= 0")
    if request.get("logprobs") or request.get("top_logprobs"):
        raise _unsupported("logprobs" if request.get("logprobs") else "top_logprobs")
    if request.get("tools") or request.get("functions"):
        raise _unsupported("tools" if request.get("tools") else "functions")
    if request.get("audio") is not None:
        raise _unsupported("audio")
    if set(request.get("modalities") or ["text"]) - {"text"}:
        raise _unsupported("modalities")
    if request.get("max_completion_tokens") is not None:
        raise _unsupported("max_completion_tokens")


def text(request: Json, n_ctx: int) -> str | None:
    """The predicted text (text parts joined), cut where it could no longer be used."""
    prediction = request.get("prediction")
    if prediction is None:
        return None
    content = prediction["content"]
    joined = content if isinstance(content, str) else "".join(part.get("text") or "" for part in content)
    return joined[: n_ctx * CHARS_PER_TOKEN]
