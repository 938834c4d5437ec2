"""A synthetic vision model's second file: ``mmproj.gguf``, its image encoder and projector
(settings/shapes.py ``VisionTower``) with random weights, as llama.cpp's mtmd loads it beside the
language model (issue #60).

The keys and tensor names are what convert_hf_to_gguf.py's mmproj conversion writes and
tools/mtmd/clip.cpp reads (``general.architecture`` clip, ``clip.projector_type``, the
``clip.vision.*`` sizes, the preprocessor's mean, std and longest edge). The matrices are F16,
as ggml-org's mmproj files are; the embeddings, norms and biases F32. Values: a matrix's
weights N(0, 1/inputs), so activations keep their size through the tower; the projector's
scaled by 0.05, so an image token's size is near SmolLM2's token embeddings' (rms ~0.05)
rather than 20 times theirs; norms 1, biases 0. Seeded by the shape and the tensor: the same
file each time. SmolVLM-256M's (93.5M parameters, 190 MB) takes ~5 s on a core here, its
tensors made and written one at a time (at most one tensor in memory: 18 MB).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from gguf import GGUFType, GGUFWriter

from ...settings.shapes import Tensor, VisionTower
from .synthetic_weights import tensor_data

FILENAME = "mmproj.gguf"
FILE_TYPE_F16 = 1  # llama.cpp's LLAMA_FTYPE_MOSTLY_F16
PROJECTOR_GAIN = 0.05
POSITION_STD = 0.02
MEAN = STD = (0.5, 0.5, 0.5)  # SigLIP's preprocessor: pixels to [-1, 1]


def _dtype(tensor: Tensor) -> np.dtype:
    return np.dtype(np.float16 if tensor.role in ("matrix", "output") else np.float32)


def tensor_bytes(tower: VisionTower, text_embd: int) -> int:
    """The file's tensor bytes (its size, less the header)."""
    return sum(tensor.count * _dtype(tensor).itemsize for tensor in tower.tensors(text_embd))


def write_mmproj(tower: VisionTower, text_embd: int, path: Path, seed: str) -> None:
    """The whole file at ``path`` (the caller writes a temporary name and renames it)."""
    writer = GGUFWriter(path, "clip")  # clip.cpp reads the clip.* keys, not the architecture's name
    _metadata(writer, tower, text_embd)
    tensors = tower.tensors(text_embd)
    for tensor in tensors:
        writer.add_tensor_info(tensor.name, tuple(reversed(tensor.ne)), _dtype(tensor), tensor.count * _dtype(tensor).itemsize)
    with tensor_data(writer) as out:
        for tensor in tensors:
            data = _values(tensor, seed)
            out.write(data.tobytes())
            writer.write_padding(out, data.nbytes)


def _metadata(writer: GGUFWriter, tower: VisionTower, text_embd: int) -> None:
    writer.add_type(GGUFType.MMPROJ)
    writer.add_file_type(FILE_TYPE_F16)
    writer.add_name(f"synthetic {tower.model} mmproj")
    writer.add_description(f"random weights in {tower.model}'s vision tower and projector shapes: its image tokens mean nothing")
    writer.add_clip_has_vision_encoder(True)
    writer.add_clip_projector_type(tower.projector)
    writer.add_vision_projection_dim(text_embd)
    writer.add_vision_image_size(tower.image_size)
    writer.add_vision_patch_size(tower.patch_size)
    writer.add_vision_embedding_length(tower.n_embd)
    writer.add_vision_feed_forward_length(tower.n_ff)
    writer.add_vision_block_count(tower.n_layer)
    writer.add_vision_head_count(tower.n_head)
    writer.add_vision_image_mean(list(MEAN))
    writer.add_vision_image_std(list(STD))
    writer.add_vision_attention_layernorm_eps(tower.eps)
    writer.add_vision_projector_scale_factor(tower.scale_factor)
    writer.add_vision_use_gelu(True)
    writer.add_vision_preproc_image_size(tower.longest_edge)


def _values(tensor: Tensor, seed: str) -> np.ndarray:
    """The tensor's values, in numpy's order (ggml's ne reversed)."""
    shape = tuple(reversed(tensor.ne))
    if tensor.role == "norm":
        return np.ones(shape, np.float32)
    if tensor.role == "bias":
        return np.zeros(shape, np.float32)
    digest = hashlib.sha256(f"{seed}/{tensor.name}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
    if tensor.name == "v.position_embd.weight":
        std = POSITION_STD
    elif tensor.name == "v.patch_embd.weight":  # a convolution over a patch's pixels of 3 colours
        std = 1 / np.sqrt(tensor.count // tensor.ne[-1])
    else:
        std = (PROJECTOR_GAIN if tensor.role == "output" else 1.0) / np.sqrt(tensor.ne[0])
    return (rng.standard_normal(shape, dtype=np.float32) * np.float32(std)).astype(_dtype(tensor))
