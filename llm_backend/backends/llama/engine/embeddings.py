"""Embedding vectors from a separate pooled context on the same loaded model.

Pooling changes what a context computes, so embeddings never share the generation context;
the context is created on first use. One input per decode, so mean pooling never mixes
two inputs.
"""

from __future__ import annotations

from typing import Any

import llama_cpp
import numpy as np
from llama_cpp import _internals

from .errors import ContextError, RequestError
from .prompts import Tokenizer


class Embedder:
    def __init__(self, model: Any, tokenizer: Tokenizer, n_ctx: int, n_threads: int, n_threads_batch: int) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.n_ctx = n_ctx
        self.n_threads, self.n_threads_batch = n_threads, n_threads_batch
        self._ctx: Any = None
        self._batch: Any = None

    def _context(self) -> Any:
        if self._ctx is None:
            params = llama_cpp.llama_context_default_params()
            params.n_ctx = params.n_batch = params.n_ubatch = self.n_ctx
            params.n_seq_max = 1
            params.n_threads, params.n_threads_batch = self.n_threads, self.n_threads_batch
            params.embeddings = True
            params.pooling_type = llama_cpp.LLAMA_POOLING_TYPE_MEAN
            self._ctx = _internals.LlamaContext(model=self.model, params=params, verbose=False)
            self._batch = _internals.LlamaBatch(n_tokens=self.n_ctx, embd=0, n_seq_max=1, verbose=False)
        return self._ctx

    def embed(self, inputs: list[str | list[int]], dimensions: int | None = None) -> dict[str, Any]:
        """One normalized vector per input, and the number of tokens read.

        ``dimensions`` (OpenAI's shortened embeddings) can only be the model's own size:
        clients such as Llama Stack send it on every request."""
        n_embd = self.model.n_embd()
        if dimensions is not None and dimensions != n_embd:
            raise RequestError(
                400,
                f"This model's embeddings have {n_embd} dimensions; 'dimensions' can only be {n_embd}.",
                "dimensions",
                "invalid_value",
            )
        ctx = self._context()
        # A client's text is text: a control token's text in it is not the token (as OpenAI
        # reads it; issue #56), which would end or split what is embedded.
        tokenized = [item if isinstance(item, list) else self.tokenizer.tokenize(item, add_bos=True, special=False) for item in inputs]
        for index, tokens in enumerate(tokenized):
            param = f"input[{index}]" if len(inputs) > 1 else "input"
            if len(tokens) > self.n_ctx:
                raise ContextError(len(tokens), self.n_ctx, param)
            if not tokens:
                raise RequestError(400, f"'{param}' must not be empty.", param, "invalid_value")
            bad = [t for t in tokens if not 0 <= t < self.tokenizer.n_vocab]
            if bad:
                raise RequestError(400, f"'{param}' has token ids outside the vocabulary.", param, "invalid_value")
        vectors = []
        for tokens in tokenized:
            self._batch.reset()
            self._batch.add_sequence(tokens, 0, True)
            ctx.kv_cache_clear()
            ctx.decode(self._batch)
            vector = np.array(llama_cpp.llama_get_embeddings_seq(ctx.ctx, 0)[:n_embd], dtype=np.float64)
            norm = np.linalg.norm(vector)
            vectors.append((vector / norm if norm > 0 else vector).tolist())
        return {"vectors": vectors, "n_tokens": sum(map(len, tokenized))}
