"""``POST /v1/moderations`` answered here: a backend (``backends/base.py``) for OpenAI's
moderation model ids, registered beside the local models, so the registry routes them,
``GET /v1/models`` lists them, and batches and the usage accounting see it as any model.

It judges text with the classifier of ``classifier.py`` on the embeddings of the retrieval
model (one embedder, shared: ``backends/embedding/backend.py``), or, when one is configured,
with a guard model (``guard.py``: a Llama Guard GGUF) instead. The classifier judges a text in pieces
of a few sentences, each category scored by its worst piece, so one threat in a long
benign letter is not averaged away. Images are refused with a 400 naming the part: no
image classifier runs here. The whole request is bounded (``MAX_INPUT_TOKENS``), as
OpenAI bounds it, and so is the count of its inputs (``moderation_inputs``; with a guard,
``moderation_guard_inputs``: one generation each), as every input costs a result whatever
it holds.
"""

from __future__ import annotations

import asyncio
import re
import threading
import uuid
from typing import TYPE_CHECKING, Any

import anyio.to_thread

from .. import errors
from ..backends.first_use import FirstUseModels
from ..budgets import check_count
from ..errors import bad_request
from ..json.types import Json
from .categories import CATEGORIES, MODEL_IDS

if TYPE_CHECKING:
    import numpy as np

    from ..backends.embedding.backend import EmbeddingModel
    from .guard import Guard

MAX_INPUT_TOKENS = 32_768
"""Tokens of all inputs of one request (omni-moderation's context)."""
MAX_INPUT_CHARACTERS = 16 * MAX_INPUT_TOKENS
"""Checked before anything is tokenized, so the work of refusing a huge text is bounded too
(English runs about 4 characters a token)."""
PIECE_WORDS = 48
"""Sentences are joined into pieces of up to this many words: enough for a threat's
context, few enough that a harmful sentence is most of its piece's meaning."""
GUARD_LANES = 4
"""Texts of one request the guard judges at once (the rest wait): a long list takes a few
of the model's sequences, never its whole queue."""
SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")


class ModerationModel(FirstUseModels):
    """A backend serving OpenAI's moderation ids with the local classifier (or a guard)."""

    ids = MODEL_IDS
    kind = "a moderation model (use /v1/moderations)"

    def __init__(
        self,
        embedding_model: "EmbeddingModel | None",
        guard: "Guard | None" = None,
        max_inputs: int = 2048,
        guard_inputs: int = 32,
    ) -> None:
        super().__init__()
        self.embedding_model = embedding_model
        self.guard = guard
        self.max_inputs = max_inputs  # ``moderation_inputs``
        self.guard_inputs = guard_inputs  # ``moderation_guard_inputs``: one generation each
        self._weights: "np.ndarray | None" = None
        self._fitting = threading.Lock()

    def weights(self) -> "np.ndarray":
        """The classifier, fitted to the examples on first use (blocking: a worker thread)."""
        from . import classifier  # numpy: loaded on first use, not at start-up

        if self._weights is None:
            with self._fitting:
                if self._weights is None:
                    examples = classifier.examples()
                    vectors = self._classifier_input().embed([example.text for example in examples])
                    self._weights = classifier.fit(vectors, [example.categories for example in examples])
        return self._weights

    def _classifier_input(self) -> "EmbeddingModel":
        """The embedding model the classifier reads: there is one whenever there is no guard
        (app/model_registry.py builds this backend with one or the other)."""
        if self.embedding_model is None:
            raise RuntimeError("the moderation classifier needs the embedding model")
        return self.embedding_model

    async def stop(self) -> None:
        self._weights = None

    # --- operations ------------------------------------------------------------------------

    async def moderation(self, model_id: str, request: Json) -> Json:
        # Counted before any input is read: each, empty or not, costs a result (200 k "" took
        # the API process +933 MB), and with a guard a generation.
        check_count(request.get("input"), self.max_inputs, "input")
        texts = inputs(request.get("input"))
        if self.guard is not None:
            check_count(texts, self.guard_inputs, "input")
        if sum(len(text) for text in texts) > MAX_INPUT_CHARACTERS:
            raise bad_request(
                f"The input is too long: at most {MAX_INPUT_CHARACTERS} characters ({MAX_INPUT_TOKENS} tokens) "
                "can be moderated in one request.",
                "input",
                "string_above_max_length",
            )
        answer: Json = {"id": f"modr-{uuid.uuid4().hex}", "model": model_id}
        if self.guard is not None:
            # Its tokens are the guard model's, counted as its engine reports them.
            lanes = asyncio.Semaphore(GUARD_LANES)
            judged = await asyncio.gather(*(self._guarded(text, lanes) for text in texts))
            return {**answer, "results": [result(scores, flagged) for scores, flagged in judged]}
        from .classifier import THRESHOLD

        assert self.embedding_model is not None  # no guard: the classifier (app/model_registry.py)
        rows, tokens = await anyio.to_thread.run_sync(self._judge, texts)
        results = []
        for row in rows:
            scores = {category: float(row[column]) for column, category in enumerate(CATEGORIES)}
            results.append(result(scores, {category for category, score in scores.items() if score >= THRESHOLD}))
        return {**answer, "results": results, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}

    async def _guarded(self, text: str, lanes: asyncio.Semaphore) -> tuple[dict[str, float], set[str]]:
        assert self.guard is not None
        if not text.strip():
            return dict.fromkeys(CATEGORIES, 0.0), set()  # nothing to judge
        async with lanes:
            return await self.guard.judge(text)

    def _judge(self, texts: list[str]) -> tuple["np.ndarray", int]:
        """Each text's scores (its worst piece's, per category) and the request's tokens."""
        import numpy as np

        from .classifier import scores

        embedding_model = self._classifier_input()
        embedder = embedding_model.embedder()
        tokens = sum(embedder.count_tokens(text) for text in texts)
        if tokens > MAX_INPUT_TOKENS:
            raise errors.context_length_exceeded(tokens, MAX_INPUT_TOKENS, "input")
        weights = self.weights()
        owners: list[int] = []
        parts: list[str] = []
        for index, text in enumerate(texts):
            for piece in pieces(text):
                owners.append(index)
                parts.append(piece)
        rows = np.zeros((len(texts), len(CATEGORIES)))
        if parts:
            scored = scores(weights, embedding_model.embed(parts))
            np.maximum.at(rows, np.array(owners), scored)
        return rows, tokens


def result(scores: dict[str, float], flagged: set[str]) -> Json:
    """One text's result, as OpenAI shapes it (text only: every category applied to text)."""
    return {
        "flagged": bool(flagged),
        "categories": {category: category in flagged for category in CATEGORIES},
        "category_scores": scores,
        "category_applied_input_types": {category: ["text"] for category in CATEGORIES},
    }


def inputs(value: Any) -> list[str]:
    """The texts judged, one result each: a string, a list of strings, or a list of
    content parts judged together (as OpenAI's omni-moderation does)."""
    if isinstance(value, str):
        return [value]
    items = list(value or [])
    if all(isinstance(item, str) for item in items):
        return items
    texts = []
    for index, part in enumerate(items):
        if part.get("type") == "image_url":
            raise bad_request(
                "Image inputs cannot be moderated here: no image classifier is configured.",
                f"input[{index}]",
                "unsupported_value",
            )
        texts.append(part["text"])
    return ["\n".join(texts)]


def pieces(text: str) -> list[str]:
    """``text`` as runs of whole sentences of up to ``PIECE_WORDS`` words (a longer
    sentence is a piece of its own); nothing for a blank text (it scores 0 everywhere)."""
    found: list[str] = []
    current: list[str] = []
    words = 0
    for sentence in SENTENCE_END.split(text):
        count = len(sentence.split())
        if not count:
            continue
        if current and words + count > PIECE_WORDS:
            found.append(" ".join(current))
            current, words = [], 0
        current.append(sentence.strip())
        words += count
    if current:
        found.append(" ".join(current))
    return found
