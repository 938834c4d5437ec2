"""A synthetic model's tensors as bytes: llama.cpp's Q4_K_M mixture of types (or the default
model's Q4_1, a test shape's), and random quantized blocks written straight, no float matrix
ever made.

The types are what ``llama-quantize ... Q4_K_M`` picks for each tensor (src/llama-quant.cpp,
``llama_tensor_get_type_impl``): Q4_K, but Q6_K for the output layer (and a tied embedding,
which is the output), for attn_v and ffn_down in the layers ``use_more_bits`` names (the first
and last eighth, every third between); a row whose length is no multiple of 256 falls back to
Q5_0 (from Q4_K) or Q8_0 (from Q6_K), as Qwen2.5-0.5B's 896-wide rows do; norms, biases and a
mixture's router stay F32. (Its rules for 8-expert models, Mixtral's, are not followed: no
shape here has 8 experts.)

A block is random bytes with its scale fields set: the quants uniform, every sub-block scale
1, and the block's fp16 ``d`` chosen from the row's length so that a weight's standard
deviation is 1/sqrt(inputs): a matrix keeps its activations' size, the residual stream grows
like sqrt(layers), and the logits stay finite (a greedy answer of the 0.5B shape has no NaN;
tests/models/test_synthetic.py). A random scale byte would make ``d`` an fp16 subnormal for a
14336-long row; a fixed one keeps it normal. Random bytes come from PCG64 (1.2 GB/s a core
here, and it frees the GIL), 16 MB at a time, each chunk seeded by the shape, the tensor and
its place: the same file every time, written in parallel.
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from io import BufferedWriter
from typing import cast

import numpy as np
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType as Q, GGUFWriter

from ...settings.shapes import Llama3Rope, Shape, Tensor

SEED = 57  # the file's bytes follow from it: change it, and GENERATOR_VERSION with it
CHUNK_BYTES = 16 << 20


@dataclass(frozen=True)
class Layout:
    """Where a block's fp16 scale(s) are, and the fixed bytes beside them."""

    d_index: int  # the block's d, in uint16 units
    weight_std: float  # a weight's standard deviation per unit of d, with the fixed bytes below
    fixed: tuple[int, bytes] | None = None  # (byte offset, bytes): the sub-block scales
    dmin_index: int | None = None  # Q4_K's dmin or Q4_1's m, set to centre the weights on 0
    dmin_factor: float = 7.5  # that field per unit of d: Q4_K subtracts its dmin, Q4_1 adds its m


# Q4_K: d, dmin, 12 bytes packing eight 6-bit scales and mins (all 1 with this pattern), 128
# bytes of nibbles: w = d*q - dmin with dmin = 7.5 d. Q4_1: d, m, 16 bytes of nibbles:
# w = d*q + m with m = -7.5 d. Q6_K: 128 + 64 bytes of 6-bit quants, 16 int8 scales (1), d
# last: w = d*(q - 32). Q5_0: d, 4 + 16 bytes: w = d*(q - 16). Q8_0: d, 32 int8: w = d*q.
# The standard deviations are those of uniform quants.
LAYOUTS = {
    Q.Q4_K: Layout(0, math.sqrt((16**2 - 1) / 12), (4, bytes([1] * 8 + [0x11] * 4)), dmin_index=1),
    Q.Q4_1: Layout(0, math.sqrt((16**2 - 1) / 12), dmin_index=1, dmin_factor=-7.5),
    Q.Q6_K: Layout(104, math.sqrt((64**2 - 1) / 12), (192, bytes([1] * 16))),
    Q.Q5_0: Layout(0, math.sqrt((32**2 - 1) / 12)),
    Q.Q8_0: Layout(0, math.sqrt((256**2 - 1) / 12)),
}


def use_more_bits(layer: int, n_layer: int) -> bool:
    return layer < n_layer // 8 or layer >= 7 * n_layer // 8 or (layer - n_layer // 8) % 3 == 2


def tensor_type(tensor: Tensor, shape: Shape) -> Q:
    """The type this tensor is written in, by its shape's ``quantization``."""
    if shape.quantization == "Q4_1":
        return q4_1_type(tensor)
    return q4_k_m_type(tensor, shape)


def q4_1_type(tensor: Tensor) -> Q:
    """The type the default model's file (SmolLM2-135M-Instruct.Q4_1.gguf) has for this tensor."""
    if tensor.role not in ("embedding", "matrix", "output"):
        return Q.F32
    return Q.Q8_0 if tensor.role in ("embedding", "output") else Q.Q4_1


def q4_k_m_type(tensor: Tensor, shape: Shape) -> Q:
    """The type llama.cpp's Q4_K_M gives this tensor."""
    if tensor.role not in ("embedding", "matrix", "output"):
        return Q.F32
    if tensor.role == "output" or (tensor.role == "embedding" and shape.tied_embeddings):
        return Q.Q6_K if tensor.ne[0] % 256 == 0 else Q.Q8_0
    wanted = Q.Q4_K
    if tensor.layer is not None and ("attn_v." in tensor.name or "ffn_down" in tensor.name):
        wanted = Q.Q6_K if use_more_bits(tensor.layer, shape.n_layer) else Q.Q4_K
    if tensor.ne[0] % 256:
        return {Q.Q4_K: Q.Q5_0, Q.Q6_K: Q.Q8_0}[wanted]
    return wanted


def nbytes(tensor: Tensor, kind: Q) -> int:
    block, size = GGML_QUANT_SIZES[kind]
    return tensor.count // block * size


def file_type_bytes(shape: Shape) -> int:
    """The tensors' bytes in the file (its size, less the header and the vocabulary)."""
    return sum(nbytes(t, tensor_type(t, shape)) for t in shape.tensors())


def _seed(shape: Shape, tensor: Tensor, chunk: int) -> int:
    digest = hashlib.sha256(f"{SEED}/{shape.name}/{tensor.name}/{chunk}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def _blocks(kind: Q, size: int, seed: int, d: float) -> np.ndarray:
    """``size`` bytes of whole random blocks of ``kind``, their scales set for ``d``."""
    layout = LAYOUTS[kind]
    block = GGML_QUANT_SIZES[kind][1]
    data = np.random.PCG64(seed).random_raw(-(-size // 8)).view(np.uint8)[:size]
    if layout.fixed is not None:
        offset, fixed = layout.fixed
        data.reshape(-1, block)[:, offset : offset + len(fixed)] = np.frombuffer(fixed, np.uint8)
    halves = data.view(np.uint16).reshape(-1, block // 2)
    halves[:, layout.d_index] = np.float16(d).view(np.uint16)
    if layout.dmin_index is not None:
        halves[:, layout.dmin_index] = np.float16(layout.dmin_factor * d).view(np.uint16)
    return data


def _f32(shape: Shape, tensor: Tensor) -> np.ndarray:
    if tensor.role == "norm":
        return np.ones(tensor.count, np.float32)
    if tensor.role == "bias":
        return np.zeros(tensor.count, np.float32)
    if tensor.role == "router":  # random, so that each token picks its own experts, as trained routers do
        rng = np.random.Generator(np.random.PCG64(_seed(shape, tensor, 0)))
        return (rng.standard_normal(tensor.count, np.float32) / math.sqrt(tensor.ne[0])).astype(np.float32)
    if tensor.role == "rope_freqs":
        return llama3_rope_factors(shape)
    raise AssertionError(tensor.role)


def llama3_rope_factors(shape: Shape) -> np.ndarray:
    """Llama 3.1's per-frequency RoPE divisors, as its GGUF conversions compute them."""
    rope = shape.rope_scaling
    assert isinstance(rope, Llama3Rope)
    freqs = 1.0 / shape.rope_theta ** (np.arange(0, shape.head_dim, 2, dtype=np.float64) / shape.head_dim)
    low, high = rope.original_context / rope.low_freq_factor, rope.original_context / rope.high_freq_factor
    factors = []
    for freq in freqs:
        wavelen = 2 * math.pi / freq
        if wavelen < high:
            factors.append(1.0)
        elif wavelen > low:
            factors.append(rope.factor)
        else:
            smooth = (rope.original_context / wavelen - rope.low_freq_factor) / (rope.high_freq_factor - rope.low_freq_factor)
            factors.append(1 / ((1 - smooth) / rope.factor + smooth))
    return np.array(factors, np.float32)


def pieces(shape: Shape, tensor: Tensor, kind: Q) -> list[Callable[[], np.ndarray]]:
    """The tensor's bytes as pieces of at most 16 MB, in order, each made when called (on
    any thread: a piece depends on nothing but its place)."""
    if kind == Q.F32:
        return [functools.partial(_f32, shape, tensor)]
    block = GGML_QUANT_SIZES[kind][1]
    total, step = nbytes(tensor, kind), max(block, CHUNK_BYTES // block * block)
    d = 1.0 / math.sqrt(tensor.ne[0]) / LAYOUTS[kind].weight_std
    return [
        functools.partial(_blocks, kind, min(step, total - start), _seed(shape, tensor, number), d)
        for number, start in enumerate(range(0, total, step))
    ]


@contextmanager
def tensor_data(writer: GGUFWriter) -> Iterator[BufferedWriter]:
    """The file with its header, keys and tensor infos written (``writer`` holds them), at
    its aligned tensor data: each tensor's bytes written in the infos' order, each followed by
    ``writer.write_padding(out, its bytes)``; on disk (fsync) and closed after."""
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    out = cast(list[BufferedWriter], writer.fout)[0]  # opened by write_header_to_file
    writer.write_padding(out, out.tell())
    try:
        yield out
        out.flush()
        os.fsync(out.fileno())
    finally:
        writer.close()
