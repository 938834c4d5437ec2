"""Synthetic Gemma 3 (issue #60): ``synthetic://gemma-3-4b`` is Gemma 3 4B-it's language model
(llama.cpp's ``gemma3`` architecture: q/k norms, norms after attention and after the FFN,
5 sliding-window layers in 6, a RoPE stretched 8 times) with Gemma 3's own SentencePiece
vocabulary and chat template, and beside it SigLIP so400m with Gemma 3's projector, all in
their real shapes with random weights: it sees nothing. The 4B is checked by its shapes alone
(its 3.3 GB are not written here); ``test-tiny-gemma3-vision``, the same architecture, vocabulary
and projector at a width written in 2-4 s, is written, loaded by llama.cpp and mtmd, and
answers an image through the engine."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import llama_cpp
import numpy as np
import pytest
from llama_cpp import _internals

from llm_backend.backends.llama.synthetic_vision import tensor_bytes
from llm_backend.backends.llama.synthetic_weights import file_type_bytes
from llm_backend.settings.shapes import SHAPES
from tests.support.engines import recording_engine, run
from tests.engine.test_media import ask, image, png, usage
from tests.engine.test_special_texts import gemma_gguf
from tests.support.models import vision_files

GEMMA = SHAPES["gemma-3-4b"]
TINY = "test-tiny-gemma3-vision"


@contextlib.contextmanager
def vocabulary_of(path) -> Iterator[Any]:
    """``path``'s model, its vocabulary only, as llama.cpp loads it."""
    params = llama_cpp.llama_model_default_params()
    params.vocab_only = True
    model = _internals.LlamaModel(path_model=str(path), params=params, verbose=False)
    try:
        yield model
    finally:
        model.close()


def vocabulary(path) -> list[tuple[bytes, float, int]]:
    """Each token's text, score and attributes, as llama.cpp reads them from ``path``."""
    with vocabulary_of(path) as model:
        vocab = model.vocab
        return [(llama_cpp.llama_vocab_get_text(vocab, i), llama_cpp.llama_vocab_get_score(vocab, i),
                 llama_cpp.llama_vocab_get_attr(vocab, i)) for i in range(llama_cpp.llama_vocab_n_tokens(vocab))]


# --- google/gemma-3-4b-it, by its shapes ---------------------------------------------------------


def test_gemma_3_4b_has_its_real_models_parameters():
    # The safetensors' total of google/gemma-3-4b-it ("4.3B"): its language model and its tower.
    text, tower = GEMMA.parameters(), sum(t.count for t in GEMMA.vision.tensors(GEMMA.n_embd))
    assert (text, tower) == (3_880_263_168, 419_816_304)
    assert text + tower == 4_300_079_472


def test_gemma_3_4b_files_are_the_size_of_the_published_ones():
    # ggml-org's gemma-3-4b-it-Q4_K_M.gguf is 2.49 GB with its header, its mmproj-model-f16.gguf 851 MB.
    assert round(file_type_bytes(GEMMA) / 1e9, 2) == 2.48
    assert round(tensor_bytes(GEMMA.vision, GEMMA.n_embd) / 1e6) == 851


def test_a_gemma_3_layer_has_the_tensors_llama_cpps_gemma3_loader_reads():
    names = [t.name.removeprefix("blk.7.") for t in GEMMA.tensors() if t.layer == 7]
    assert names == ["attn_norm.weight", "attn_q.weight", "attn_k.weight", "attn_v.weight", "attn_output.weight",
                     "attn_q_norm.weight", "attn_k_norm.weight", "post_attention_norm.weight", "ffn_norm.weight",
                     "ffn_gate.weight", "ffn_up.weight", "ffn_down.weight", "post_ffw_norm.weight"]
    # Tied: the embedding is the output layer (Q6_K in a Q4_K_M file), no output.weight.
    assert "output.weight" not in {t.name for t in GEMMA.tensors()}


# --- the test shape, written and served ------------------------------------------------------------


@pytest.fixture(scope="module")
def files():
    return vision_files(TINY)


@pytest.fixture(scope="module")
def model(files):
    loaded = _internals.LlamaModel(path_model=str(files[0]), params=llama_cpp.llama_model_default_params(), verbose=False)
    yield loaded
    loaded.close()


def test_its_vocabulary_is_gemma_3s_with_its_image_token_and_padding(files):
    gemma, written = vocabulary(gemma_gguf()), vocabulary(files[0])
    assert len(gemma) == 262144 and len(written) == 262208  # padded as Gemma 3 4B's is
    assert written[:262144] == gemma  # every piece, score and type
    assert [text for text, _, _ in written[262144:262146]] == [b"<image_soft_token>", b"[PAD262145]"]


def test_a_chat_tokenizes_as_gemma_3s_own_vocabulary_does(model):
    text = b"<start_of_turn>user\nWhat is in the picture?<end_of_turn>\n<start_of_turn>model\n"
    with vocabulary_of(gemma_gguf()) as real:
        assert model.tokenize(text, add_bos=True, special=True) == real.tokenize(text, add_bos=True, special=True)
    assert model.tokenize(text, add_bos=True, special=True)[:3] == [2, 105, 2364]  # <bos> <start_of_turn> user


def test_llama_cpp_loads_it_as_gemma_3_with_its_window_and_stretched_rope(model):
    meta = model.metadata()
    assert meta["general.architecture"] == "gemma3"
    assert meta["gemma3.attention.sliding_window"] == "128" and meta["gemma3.rope.freq_base_swa"] == "10000.000000"
    assert meta["gemma3.rope.scaling.type"] == "linear" and meta["gemma3.rope.scaling.factor"] == "8.000000"
    assert model.rope_freq_scale_train() == pytest.approx(1 / 8)
    assert "its answers mean nothing" in meta["general.description"]


def test_its_logits_are_finite_and_of_unit_spread(files):
    llm = llama_cpp.Llama(str(files[0]), n_ctx=64, n_batch=16, n_threads=2, logits_all=True, verbose=False)
    tokens = llm.tokenize(b"<start_of_turn>user\nThe capital of France is", special=True)
    llm.eval(tokens)
    logits = np.array(llm.scores[: len(tokens)])
    assert np.isfinite(logits).all() and 0.5 < logits.std() < 2


@pytest.fixture(scope="module")
def engine(files):
    model, projector = files
    engine = recording_engine({"path": str(model), "mmproj": str(projector), "n_ctx": 512, "parallel": 2, "n_threads": 2})
    yield engine
    engine.close()


def test_an_image_is_framed_as_gemma_3_frames_it_in_one_non_causal_span(engine):
    prompt, _, _, spans = engine.chat_prompt(ask(image(png(40, 30)))["messages"], tenant="g")
    [span] = spans
    assert span.n == 16 and span.whole  # the test tower: 224 pixels, 16 x 16 patches averaged 4 x 4
    # Gemma 3's template, and mtmd's gemma3 framing around the image.
    assert prompt[: span.start] == [2, 105, 2364, 107, 255999]  # <bos> <start_of_turn> user \n <start_of_image>
    assert prompt[span.end] == 256000  # <end_of_image>


def test_an_image_chat_is_answered_with_its_tokens_in_usage(engine):
    engine.submit("seen", "chat", ask(image(png(40, 30)), tenant="g", max_tokens=6))
    run(engine)
    assert engine.recorder.finish_reason("seen") == "length"
    counted = usage(engine, "seen")
    assert counted["prompt_tokens"] == len(engine.chat_prompt(ask(image(png(40, 30)))["messages"], tenant="g")[0])
    assert counted["prompt_tokens"] > 16 and counted["completion_tokens"] == 6
    assert engine.media.encoded == 1


def test_a_prompt_past_its_sliding_window_is_answered(engine):
    words = "Count the words of this sentence. " * 40  # ~280 tokens: past the 128-position window
    engine.submit("long", "chat", {"messages": [{"role": "user", "content": words}], "max_tokens": 4, "temperature": 0, "tenant": "g"})
    run(engine)
    assert engine.recorder.finish_reason("long") == "length"
    assert usage(engine, "long")["prompt_tokens"] > 128
