"""The retrieval embedder as a model: ``POST /v1/embeddings`` with ``all-minilm-l6-v2``,
and the one ``Embedder`` that file_search (and indexing) embed with.

It is a backend (``backends/base.py``) registered beside the local chat models, so the
registry routes its ids, ``GET /v1/models`` lists them, and the embeddings controller needs
nothing new. It lives in ``retrieval`` (above ``backends``) because the embedder does:
one instance, one llama context, shared by the API and by retrieval, so a search and an
``embeddings.create`` give the same vectors for the same text.

Loaded on first use, not at start-up: most deployments never embed, and the model costs
about 100 MB and 0.3-0.6 s to load (its GGUF is written from the package once, 0.3 s).
It runs in the API process, in a worker thread (llama.cpp releases the GIL), one thread
of llama.cpp by default (``embedding_threads``; docs/RETRIEVAL.md has why).

Token arrays are OpenAI's ids (LangChain's ``OpenAIEmbeddings`` sends them), read as the
text they stand for (``openai_tokens.py``), then embedded as that text. What the engine
cannot honour is refused, not ignored: ``dimensions`` other than 384, ids outside OpenAI's
encoding, empty strings, inputs over 8192 tokens (OpenAI's per-input limit; longer texts embed as the
mean of 254-token windows, see ``embedder.py``). Generation operations answer 400
``model_not_supported``.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

import anyio.to_thread

from .. import errors
from ..backends.base import Json
from ..backends.first_use import FirstUseModels
from ..errors import bad_request
from ..openai_tokens import text_of

if TYPE_CHECKING:
    import numpy as np

    from ..settings import Settings
    from .embedder import Embedder

log = logging.getLogger(__name__)

MAX_INPUT_TOKENS = 8192


class EmbeddingModel(FirstUseModels):
    """A backend serving one sentence-embedding model (its id and aliases)."""

    kind = "an embedding model (use /v1/embeddings)"

    def __init__(self, settings: "Settings") -> None:
        super().__init__()
        self.ids = settings.embedding_model_ids
        self.package = settings.embedding_model_package
        self.cache_dir = settings.model_cache_dir
        self.threads = settings.embedding_threads
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
        # The inputs read in the thread too: token ids into text is work sized by them.
        vectors, counts = await anyio.to_thread.run_sync(self._embed_checked, request.get("input"), dimensions)
        data = []
        for index, vector in enumerate(vectors):
            shown: Any = base64.b64encode(vector.astype("<f4").tobytes()).decode() if encoding == "base64" else vector.tolist()
            data.append({"object": "embedding", "index": index, "embedding": shown})
        total = sum(counts)
        return {"object": "list", "data": data, "model": model_id, "usage": {"prompt_tokens": total, "total_tokens": total}}

    def _embed_checked(self, value: Any, dimensions: Any) -> tuple["np.ndarray", list[int]]:
        texts = _texts(value)
        embedder = self.embedder()
        if dimensions is not None and dimensions != embedder.dimensions:
            raise bad_request(
                f"This model's embeddings have {embedder.dimensions} dimensions; 'dimensions' can only be "
                f"{embedder.dimensions}.",
                "dimensions",
                "invalid_value",
            )
        counts = [embedder.count_tokens(text) for text in texts]
        for index, count in enumerate(counts):
            if count > MAX_INPUT_TOKENS:
                raise errors.context_length_exceeded(count, MAX_INPUT_TOKENS, _param(index, len(texts)))
        return embedder.embed(texts), counts


def _param(index: int, count: int) -> str:
    return f"input[{index}]" if count > 1 else "input"


def _texts(value: Any) -> list[str]:
    """The request's ``input`` as texts: token arrays are OpenAI's ids, read as their text
    (openai_tokens.py); empty texts are refused."""
    if isinstance(value, list) and value and all(isinstance(item, int) and not isinstance(item, bool) for item in value):
        value = [value]  # one token array
    items = [value] if isinstance(value, str) else list(value or [])
    if not items:
        raise bad_request("'input' must not be empty.", "input", "invalid_value")
    texts = []
    for index, item in enumerate(items):
        param = _param(index, len(items))
        text = item if isinstance(item, str) else text_of([int(token) for token in item], param)
        if not text.strip():
            raise bad_request(f"'{param}' must not be empty.", param, "invalid_value")
        texts.append(text)
    return texts
