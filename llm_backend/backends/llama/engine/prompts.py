"""Prompts as tokens: the chat template (the GGUF's own, as llama-cpp-python's
``create_chat_completion`` uses it, or a named format) and the tokenizer."""

from __future__ import annotations

import ctypes
import re
from typing import Any

import llama_cpp
from llama_cpp import llama_chat_format


def _named_formatters() -> dict[str, Any]:
    # llama-cpp-python registers its formats only as completion handlers; the formatter
    # functions themselves are module attributes ``format_<name>``. Match the two by name.
    functions = {
        re.sub(r"[^a-z0-9]", "", name[len("format_") :]): value
        for name, value in vars(llama_chat_format).items()
        if name.startswith("format_") and callable(value)
    }
    registered = llama_chat_format.LlamaChatCompletionHandlerRegistry()._chat_handlers
    return {
        name: functions[key]
        for name in registered
        if (key := re.sub(r"[^a-z0-9]", "", name.lower())) in functions
    }


class Tokenizer:
    """Text <-> tokens for one model, with each token's bytes cached (they never change)."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.vocab = model.vocab
        self.n_vocab = llama_cpp.llama_vocab_n_tokens(self.vocab)
        self._pieces: dict[int, bytes] = {}
        self._buffer = ctypes.create_string_buffer(256)

    def tokenize(self, text: str, add_bos: bool, special: bool = True) -> list[int]:
        """``special``: control tokens' text (``<|im_end|>``) read as those tokens, as in a
        rendered template; a client's own text (a prediction) is read as plain text."""
        return self.model.tokenize(text.encode(), add_bos=add_bos, special=special)

    def piece(self, token: int) -> bytes:
        """The bytes a generated token stands for (none for control tokens)."""
        piece = self._pieces.get(token)
        if piece is None:
            n = llama_cpp.llama_token_to_piece(self.vocab, token, self._buffer, len(self._buffer), 0, False)
            piece = self._buffer.raw[: max(n, 0)]
            self._pieces[token] = piece
        return piece

    def is_eog(self, token: int) -> bool:
        return bool(llama_cpp.llama_vocab_is_eog(self.vocab, token))

    def text_of(self, tokens: list[int]) -> str:
        return b"".join(self.piece(token) for token in tokens).decode("utf-8", errors="replace")


class ChatTemplate:
    """Messages -> prompt text and the template's own stop strings."""

    def __init__(self, model: Any, chat_format: str | None, chat_template: str | None = None) -> None:
        metadata = model.metadata()
        vocab = model.vocab
        eos, bos = llama_cpp.llama_vocab_eos(vocab), llama_cpp.llama_vocab_bos(vocab)
        eos_text = model.token_get_text(eos) if eos != -1 else ""
        bos_text = model.token_get_text(bos) if bos != -1 else ""
        if chat_template:
            template = chat_template  # the config's inline Jinja template
        elif chat_format and "{%" in chat_format:
            template = chat_format  # a Jinja template given inline
        elif chat_format:
            formatters = _named_formatters()
            if chat_format not in formatters:
                raise ValueError(f"unknown chat_format {chat_format!r}; known: {sorted(formatters)}")
            self.formatter = formatters[chat_format]
            return
        else:
            template = metadata.get("tokenizer.chat_template")
        if template is None:
            self.formatter = _named_formatters()["llama-2"]  # llama-cpp-python's own fallback
            return
        self.formatter = llama_chat_format.Jinja2ChatFormatter(
            template=template, eos_token=eos_text, bos_token=bos_text, stop_token_ids=[eos]
        )

    def render(self, messages: list[dict[str, Any]]) -> tuple[str, list[str], bool]:
        """The prompt, extra stop strings, and whether the prompt already has its BOS."""
        result = self.formatter(messages=messages)
        stop = result.stop if isinstance(result.stop, list) else ([result.stop] if result.stop else [])
        return result.prompt, stop, result.added_special
