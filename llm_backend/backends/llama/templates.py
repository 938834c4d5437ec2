"""A model's chat template override, applied inside the engine worker (imports llama_cpp).

Without an override llama-cpp-python uses the template stored in the GGUF. ``chat_format``
names one of llama-cpp-python's built-in formats (chatml, llama-2, mistral-instruct, zephyr,
gemma, ...); ``chat_template`` is a Jinja template in the Hugging Face style.
"""

from __future__ import annotations

from typing import Any

import llama_cpp
from llama_cpp import llama_chat_format


def chat_format_names() -> list[str]:
    return sorted(llama_chat_format.LlamaChatCompletionHandlerRegistry()._chat_handlers)


def apply(llm: llama_cpp.Llama, config: dict[str, Any]) -> None:
    """Check the configured format name, or install the configured Jinja template, on ``llm``
    before it serves anything: a wrong name fails the load, not the first request."""
    name = config.get("chat_format")
    if name and name not in chat_format_names():
        raise ValueError(f"unknown chat_format {name!r}; known: {', '.join(chat_format_names())}")
    template = config.get("chat_template")
    if not template:
        return
    eos, bos = llm.token_eos(), llm.token_bos()
    llm.chat_handler = llama_chat_format.Jinja2ChatFormatter(
        template=template,
        eos_token=llm._model.token_get_text(eos) if eos != -1 else "",
        bos_token=llm._model.token_get_text(bos) if bos != -1 else "",
        stop_token_ids=[eos] if eos != -1 else None,
    ).to_chat_handler()
