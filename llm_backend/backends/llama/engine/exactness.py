"""How many rows of one sequence this device computes in one decode bit for bit as it computes
them one at a time: the most a draft may span while a greedy answer stays the plain one.

A row's logits depend on the decode's shape only through the kernels it picks: llama.cpp
has known since #3014 and #4479 that rows computed together differ from a row alone where a
kernel of another reduction order takes over (on CUDA, past 8 rows the quantized
matrix-vector kernels end, ggml-cuda/mmvq.cuh's MMVQ_MAX_BATCH_SIZE, and tiled ones begin).
Measured on 2 cores (AVX-512, SmolLM2 Q4_1, llama-cpp-python 0.3.36), flash attention on:
every size from 2 to 63 rows bitwise the rows alone, beside other sequences too; 64 or
more, every row moved, by up to 1.1-1.5 logits; flash attention off, even 2 rows moved, by
0.93. So the model setting ``prediction_exact`` has the engine find this size once at its
start (``exact_rows``: a short prompt, eight of its rows decoded alone, then the same rows in
chunks of growing sizes until one differs), and its drafts never exceed it (drafts.py). The
sizes probed are where kernels switch (a power of two and the one after it, and a few
between); a device switching at another size would escape the probe. It costs 2.5-7.4 s on
these 2 cores loaded (load average 11-12; quiet, ~1.7 s by bench row (d)'s costs), and
milliseconds on a GPU.
"""

from __future__ import annotations

import ctypes
from typing import Any

import llama_cpp
import numpy as np

from .prompts import Tokenizer

SIZES = (2, 3, 4, 5, 8, 9, 12, 16, 17, 24, 32, 33, 48, 63, 64)
START = 32  # prompt tokens before the rows probed
COMPARED = 8  # rows of each chunk compared with the same rows decoded alone
PROBE = (
    "def read_settings(path):\n    \"\"\"The settings in the file at path, as a dict.\"\"\"\n"
    "    with open(path) as file:\n        return json.load(file)\n\n\n"
    "Settings are read once, when the service starts; a change needs a restart. "
)


def exact_rows(ctx: Any, tokenizer: Tokenizer, seq_id: int, most: int) -> int:
    """The largest size up to ``most`` rows whose chunks (and every smaller size probed)
    give the rows alone's logits bit for bit; 1 if none does. Uses ``seq_id``'s KV and
    leaves it empty: call it before the sequence serves anything."""
    memory = llama_cpp.llama_get_memory(ctx)
    # One micro-batch (a larger decode is split into several), within one sequence's window.
    most = min(most, llama_cpp.llama_n_ubatch(ctx), llama_cpp.llama_n_ctx_seq(ctx) - START - 1)
    if most < 2:
        return 1
    text = tokenizer.tokenize(PROBE, add_bos=False, special=False)
    prompt = text * (1 + (START + most) // len(text))  # START tokens, then the rows probed
    batch = llama_cpp.llama_batch_init(max(START, most), 0, 1)
    n_vocab = tokenizer.n_vocab
    try:
        step = llama_cpp.llama_n_batch(ctx)  # a decode holds at most n_batch rows (llama.cpp aborts past it)
        for at in range(0, START, step):
            decode(ctx, batch, n_vocab, prompt[at : min(START, at + step)], at, seq_id, logits=False)
        alone = [decode(ctx, batch, n_vocab, [token], START + i, seq_id)[0] for i, token in enumerate(prompt[START : START + COMPARED])]
        exact = 1
        for size in (size for size in SIZES if size <= most):
            llama_cpp.llama_memory_seq_rm(memory, seq_id, START, -1)
            rows = decode(ctx, batch, n_vocab, prompt[START : START + size], START, seq_id)
            if any(not np.array_equal(row, own) for row, own in zip(rows, alone)):
                break
            exact = size
        return exact
    finally:
        llama_cpp.llama_memory_seq_rm(memory, seq_id, 0, -1)
        llama_cpp.llama_batch_free(batch)


def decode(ctx: Any, batch: Any, n_vocab: int, tokens: list[int], start: int, seq_id: int, logits: bool = True) -> list[np.ndarray]:
    """Decode ``tokens`` of ``seq_id`` from position ``start`` in one batch (``logits``: of
    every row, as a draft's); copies of the first ``COMPARED`` rows' logits."""
    batch.n_tokens = len(tokens)
    for i, token in enumerate(tokens):
        batch.token[i], batch.pos[i], batch.n_seq_id[i], batch.logits[i] = token, start + i, 1, logits
        batch.seq_id[i][0] = seq_id
    code = llama_cpp.llama_decode(ctx, batch)
    if code != 0:
        raise RuntimeError(f"llama_decode returned {code}")
    pointer = ctypes.POINTER(ctypes.c_float)
    return [
        np.ctypeslib.as_array(ctypes.cast(llama_cpp.llama_get_logits_ith(ctx, i), pointer), shape=(n_vocab,)).copy()
        for i in range(min(len(tokens), COMPARED) if logits else 0)
    ]
