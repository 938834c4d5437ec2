"""The embedder as a model: ``POST /v1/embeddings`` with ``all-minilm-l6-v2``, and the one
``Embedder`` that file_search (and indexing) and moderation embed with.

It is a backend (``backends/base.py``) registered beside the local chat models, so the
registry routes its ids, ``GET /v1/models`` lists them, and the embeddings controller needs
nothing new. It lives in ``backends/`` with its engine, not with what embeds: one instance,
one llama context, shared by the API, file search and the moderation classifier, so a
search and an ``embeddings.create`` give the same vectors for the same text, and the
models are served whatever family is registered.

Loaded on first use, not at start-up: most deployments never embed, and the model costs
about 100 MB and 0.3-0.6 s to load (its GGUF is written from the package once, 0.3 s).
It runs in the API process, in a worker thread (llama.cpp releases the GIL), one thread
of llama.cpp by default (``embedding_threads``; docs/RETRIEVAL.md has why).

Token arrays are OpenAI's ids (LangChain's ``OpenAIEmbeddings`` sends them), read as the
text they stand for (``openai_tokens.py``), then embedded as that text. What the engine
cannot honour is refused, not ignored: ``dimensions`` other than 384, ids outside OpenAI's
encoding, empty strings, inputs over 8192 tokens (OpenAI's per-input limit; longer texts embed as the
mean of 254-token windows, see ``embedder.py``), more than 2048 inputs or 300,000 tokens in
all (OpenAI's, ``embedding_request_tokens``: counted in this model's tokens, which are the
work, and first in OpenAI's ids, before any is decoded: an id can stand for 114 of them). Generation operations answer 400
``model_not_supported``.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

import anyio.to_thread

from ... import errors
from ..first_use import FirstUseModels
from ...budgets import MAX_CHARS_PER_TOKEN, check_count
from ...errors import bad_request, max_tokens_per_request
from ...json.types import Json
from ...openai_tokens import text_of

if TYPE_CHECKING:
    import numpy as np

    from ...settings import Settings
    from .embedder import Embedder

log = logging.getLogger(__name__)

MAX_INPUT_TOKENS = 8192
# The characters 8192 tokens can hold: no tokenizer's tokens are longer on average.
MAX_INPUT_CHARS = MAX_INPUT_TOKENS * MAX_CHARS_PER_TOKEN
MAX_INPUTS = 2048  # OpenAI's (the document's maxItems too)


class EmbeddingModel(FirstUseModels):
    """A backend serving one sentence-embedding model (its id and aliases)."""

    kind = "an embedding model (use /v1/embeddings)"

    def __init__(self, settings: "Settings") -> None:
        super().__init__()
        self.ids = settings.embedding_model_ids
        self.package = settings.embedding_model_package
        self.cache_dir = settings.model_cache_dir
        self.threads = settings.embedding_threads
        self.request_tokens = settings.embedding_request_tokens
        self._embedder: Embedder | None = None
        self._loading = threading.Lock()

    # --- the embedder (blocking: call from a worker thread) ------------------------------

    def embedder(self) -> "Embedder":
        """The loaded embedder (loaded now, once, if it is not)."""
        if self._embedder is None:
            with self._loading:
                if self._embedder is None:
                    from .embedder import Embedder

                    started = time.perf_counter()
                    self._embedder = Embedder.from_package(self.cache_dir, self.package, self.threads)
                    log.info("embedding model loaded", extra={"seconds": round(time.perf_counter() - started, 3)})
        return self._embedder

    def embed(self, texts: list[str]) -> "np.ndarray":
        """L2-normalised float32 vectors (``Searcher``'s ``embed``)."""
        return self.embedder().embed(texts)

    # --- lifecycle and models ------------------------------------------------------------

    async def stop(self) -> None:
        self._embedder = None

    # --- operations ----------------------------------------------------------------------

    async def embedding(self, model_id: str, request: Json) -> Json:
        dimensions = request.get("dimensions")
        encoding = request.get("encoding_format") or "float"
        # The inputs read in the thread too: counting and decoding token ids is work sized by them.
        vectors, counts = await anyio.to_thread.run_sync(self._embed_checked, request.get("input"), dimensions)
        data = []
        for index, vector in enumerate(vectors):
            shown: Any = base64.b64encode(vector.astype("<f4").tobytes()).decode() if encoding == "base64" else vector.tolist()
            data.append({"object": "embedding", "index": index, "embedding": shown})
        total = sum(counts)
        return {"object": "list", "data": data, "model": model_id, "usage": {"prompt_tokens": total, "total_tokens": total}}

    def _embed_checked(self, value: Any, dimensions: Any) -> tuple["np.ndarray", list[int]]:
        items = _inputs(value, self.request_tokens)
        embedder = self.embedder()
        if dimensions is not None and dimensions != embedder.dimensions:
            raise bad_request(
                f"This model's embeddings have {embedder.dimensions} dimensions; 'dimensions' can only be "
                f"{embedder.dimensions}.",
                "dimensions",
                "invalid_value",
            )
        texts, counts, total = [], [], 0
        for index, item in enumerate(items):
            param = _param(index, len(items))
            text = item if isinstance(item, str) else text_of([int(token) for token in item], param)
            if not text.strip():
                raise bad_request(f"'{param}' must not be empty.", param, "invalid_value")
            if len(text) > MAX_INPUT_CHARS:
                # Measured before it is tokenized: the tokenizer's encoding of 8 MiB of text
                # (ids, offsets, token strings, masks) grew the API process by 608 MiB.
                raise errors.context_length_exceeded(len(text) // MAX_CHARS_PER_TOKEN, MAX_INPUT_TOKENS, param)
            count = embedder.count_tokens(text, MAX_INPUT_TOKENS)
            if count > MAX_INPUT_TOKENS:
                raise errors.context_length_exceeded(count, MAX_INPUT_TOKENS, param)
            counts.append(count)
            texts.append(text)
            total += count
            # Stopped at the input that passes the request's total: the rest is never read
            # (an id can stand for 100 tokens of this model, so ids alone cannot bound it).
            if total > self.request_tokens:
                raise max_tokens_per_request(total, self.request_tokens)
        return embedder.embed(texts), counts


def _param(index: int, count: int) -> str:
    return f"input[{index}]" if count > 1 else "input"


def _inputs(value: Any, request_tokens: int) -> list[str | list[int]]:
    """The request's ``input`` as a list of texts and token arrays (OpenAI's ids), counted,
    not read: ids are OpenAI's tokens, so a token array over the per-input limit, or ids
    over the request's total, are refused before any is decoded."""
    if isinstance(value, list) and value and all(isinstance(item, int) and not isinstance(item, bool) for item in value):
        value = [value]  # one token array
    items = [value] if isinstance(value, str) else list(value or [])
    if not items:
        raise bad_request("'input' must not be empty.", "input", "invalid_value")
    check_count(items, MAX_INPUTS, "input")
    ids = 0
    for index, item in enumerate(items):
        if isinstance(item, list):
            if len(item) > MAX_INPUT_TOKENS:
                raise errors.context_length_exceeded(len(item), MAX_INPUT_TOKENS, _param(index, len(items)))
            ids += len(item)
    if ids > request_tokens:
        raise max_tokens_per_request(ids, request_tokens)
    return items
