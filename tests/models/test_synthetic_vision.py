"""A synthetic vision model (issue #60): ``synthetic://smolvlm-256m`` is SmolVLM-256M's language
model and, beside it, ``mmproj.gguf``, its SigLIP tower and idefics3 projector in their real
shapes with random weights; llama.cpp's mtmd (built with llama-cpp-python: the Makefile) loads
the pair and frames an image as the real model does. What it sees means nothing."""

from __future__ import annotations

import ctypes

import numpy as np
import pytest
from gguf import GGUFReader

from llm_backend.settings.shapes import SHAPES, SMOLVLM_TOKENS
from tests.support.models import smolvlm_files

SHAPE = SHAPES["smolvlm-256m"]
CONTROL = 3


@pytest.fixture(scope="module")
def files():
    return smolvlm_files()


def test_the_language_model_has_smolvlms_tokens_at_their_ids_and_its_template(files):
    fields = GGUFReader(files[0]).fields
    tokens = list(fields["tokenizer.ggml.tokens"].contents())
    types = list(fields["tokenizer.ggml.token_type"].contents())
    assert len(tokens) == 49280 and tokens[49152:] == list(SMOLVLM_TOKENS)
    assert tokens[49152] == "<global-img>" and tokens[49189] == "<fake_token_around_image>"
    assert set(types[49152:]) == {CONTROL}
    assert fields["tokenizer.ggml.eos_token_id"].contents() == 49279  # <end_of_utterance>
    assert "<end_of_utterance>" in fields["tokenizer.chat_template"].contents()
    assert round(SHAPE.parameters() / 1e6) == 163  # 256M with the tower's 93.5M


def test_the_projector_is_smolvlms_tower_in_its_shapes(files):
    reader = GGUFReader(files[1])
    fields = reader.fields
    assert fields["general.architecture"].contents() == "clip"
    assert fields["clip.projector_type"].contents() == "idefics3"
    assert fields["clip.vision.preproc_image_size"].contents() == 2048
    assert len(reader.tensors) == 198
    assert round(sum(int(np.prod(t.shape)) for t in reader.tensors) / 1e6, 1) == 93.5
    fc = next(t for t in reader.tensors if t.name == "mm.model.fc.weight")
    assert list(fc.shape) == [12288, 576] and fc.tensor_type.name == "F16"


@pytest.fixture(scope="module")
def mtmd_context(files):
    import llama_cpp
    import llama_cpp.mtmd_cpp as mtmd
    from llama_cpp import _internals

    model = _internals.LlamaModel(path_model=str(files[0]), params=llama_cpp.llama_model_default_params(), verbose=False)
    params = mtmd.mtmd_context_params_default()
    params.use_gpu, params.n_threads, params.warmup = False, 1, False
    context = mtmd.mtmd_init_from_file(str(files[1]).encode(), model.model, params)
    assert context, "mtmd could not load the projector"
    yield mtmd, context
    mtmd.mtmd_free(context)


def image_tokens(mtmd, context, width: int, height: int) -> list[int]:
    """Each image chunk's token count for one image of ``width`` x ``height`` in a user turn
    (mtmd tokenizes and resizes only: nothing is encoded)."""
    pixels = (ctypes.c_ubyte * (width * height * 3))()
    bitmap = mtmd.mtmd_bitmap_init(width, height, pixels)
    chunks = mtmd.mtmd_input_chunks_init()
    text = mtmd.mtmd_input_text()
    raw = f"<|im_start|>User:{mtmd.mtmd_default_marker().decode()}What is it?<end_of_utterance>\nAssistant:".encode()
    text.text, text.text_len, text.add_special, text.parse_special = raw, len(raw), False, True
    try:
        assert mtmd.mtmd_tokenize(context, chunks, ctypes.byref(text), (mtmd.mtmd_bitmap_p_ctypes * 1)(bitmap), 1) == 0
        found = []
        for i in range(mtmd.mtmd_input_chunks_size(chunks)):
            chunk = mtmd.mtmd_input_chunks_get(chunks, i)
            if mtmd.mtmd_input_chunk_get_type(chunk) == mtmd.MTMD_INPUT_CHUNK_TYPE_IMAGE:
                found.append(mtmd.mtmd_input_chunk_get_n_tokens(chunk))
        return found
    finally:
        mtmd.mtmd_input_chunks_free(chunks)
        mtmd.mtmd_bitmap_free(bitmap)


def test_mtmd_frames_an_image_in_tiles_of_64_tokens_as_the_real_model_does(mtmd_context):
    """The preprocessor makes the long side 2048: a square is 4 x 4 tiles and an overview
    (1,088 tokens) at any size; a 2:1 image 2 x 4 and an overview; a 1x1 PNG as a square."""
    mtmd, context = mtmd_context
    assert mtmd.mtmd_support_vision(context)
    assert image_tokens(mtmd, context, 1, 1) == [64] * 17
    assert image_tokens(mtmd, context, 64, 64) == [64] * 17
    assert image_tokens(mtmd, context, 128, 64) == [64] * 9
