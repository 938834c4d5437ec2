"""Chat templates on the real default GGUF (its vocabulary and metadata only)."""

from __future__ import annotations

import llama_cpp
import pytest
from llama_cpp import _internals

from llm_backend.backends.llama.engine.prompts import ChatTemplate, Tokenizer
from tests.support.models import default_gguf

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]


@pytest.fixture(scope="module")
def model():
    params = llama_cpp.llama_model_default_params()
    params.vocab_only = True
    return _internals.LlamaModel(path_model=str(default_gguf()), params=params, verbose=False)


def test_the_gguf_own_template_is_used_by_default(model):
    prompt, stop, has_bos = ChatTemplate.of_model(model, None).render(MESSAGES)
    assert prompt == "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    assert stop == ["<|im_end|>"] and has_bos


def test_a_named_chat_format_overrides_the_template(model):
    prompt, _, _ = ChatTemplate.of_model(model, "llama-2").render(MESSAGES)
    assert prompt == "[INST] <<SYS>>\nBe brief.\n<</SYS>> Hi [/INST]"


def test_an_inline_jinja_template_is_accepted(model):
    template = "{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}"
    prompt, _, _ = ChatTemplate.of_model(model, template).render(MESSAGES)
    assert prompt == "[system] Be brief.\n[user] Hi\n"


def test_an_unknown_chat_format_is_refused_with_the_known_names(model):
    with pytest.raises(ValueError, match="chatml"):
        ChatTemplate.of_model(model, "no-such-format")


def test_token_pieces_are_the_bytes_of_the_text(model):
    tokenizer = Tokenizer(model)
    tokens = tokenizer.tokenize("Grüße, 世界!", add_bos=False)
    assert tokenizer.text_of(tokens) == "Grüße, 世界!"
