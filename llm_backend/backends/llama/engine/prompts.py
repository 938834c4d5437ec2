"""Prompts as tokens: the chat template (the GGUF's own, as llama-cpp-python's
``create_chat_completion`` uses it, or a named format) with the tools in the model's own
format (tool_formats/), and the tokenizer. Only the template's own markup becomes control
tokens: a client's text that holds their text is defused first (special_texts.py)."""

from __future__ import annotations

import ctypes
import functools
import re
from typing import Any

import jinja2
import llama_cpp
from llama_cpp import llama_chat_format

from .. import reasoning
from ..tool_formats import ToolFormat, for_template, named
from .errors import RequestError
from .special_texts import Defused, SpecialTexts

# A tool a template is given to see whether it prints the tools it gets.
PROBE_TOOL: dict[str, Any] = {"type": "function", "function": {"name": "probe_tool_of_llm_backend", "description": "probe", "parameters": {"type": "object", "properties": {}}}}


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
        self._shown: set[int] = set()  # special tokens whose text is shown (the tool format's)

    def show(self, texts: tuple[str, ...]) -> None:
        """Show the text of these special tokens where they are generated: the tool format's
        markers (``<|python_tag|>``, ``[TOOL_CALLS]``, ``<|channel|>``...), which llama.cpp
        otherwise renders as nothing."""
        for text in texts:
            tokens = self.model.tokenize(text.encode(), add_bos=False, special=True)
            if len(tokens) == 1:
                self._shown.add(tokens[0])
                self._pieces.pop(tokens[0], None)

    @functools.cached_property
    def specials(self) -> SpecialTexts:
        """The texts of the vocabulary's control tokens, for keeping a client's text text."""
        return SpecialTexts(self.vocab, self.n_vocab, self.tokenize)

    def tokenize(self, text: str, add_bos: bool, special: bool = True) -> list[int]:
        """``special``: control tokens' text (``<|im_end|>``) read as those tokens, as in a
        rendered template, or a legacy completion's raw ``prompt``: the client's own template
        text, read so as llama.cpp's server does; a client's text inside a chat (a message, a
        prediction) is read as plain text (special_texts.py)."""
        data = text.encode()
        # Room for every token in one call: llama-cpp-python's wrapper sizes its buffer by the
        # trained window and tokenizes a longer text twice (an agent's 9.5k-token prompt: 18 ms
        # against 9). Tokens are at most a byte each, beside BOS, EOS and a leading space.
        room = len(data) + 4
        tokens = (llama_cpp.llama_token * room)()
        n = llama_cpp.llama_tokenize(self.vocab, data, len(data), tokens, room, add_bos, special)
        if n < 0:
            raise RuntimeError(f"llama_tokenize needed {-n} tokens for {len(data)} bytes")
        return tokens[:n]

    def piece(self, token: int) -> bytes:
        """The bytes a generated token stands for (none for control tokens)."""
        piece = self._pieces.get(token)
        if piece is None:
            piece = self._pieces[token] = self._text(token, token in self._shown)
        return piece

    def special_text(self, token: int) -> str:
        """A special token's own text (``<|im_start|>``), which ``piece`` gives as nothing."""
        return self._text(token, True).decode("utf-8", errors="replace")

    def _text(self, token: int, special: bool) -> bytes:
        n = llama_cpp.llama_token_to_piece(self.vocab, token, self._buffer, len(self._buffer), 0, special)
        return self._buffer.raw[: max(n, 0)]

    def is_eog(self, token: int) -> bool:
        return bool(llama_cpp.llama_vocab_is_eog(self.vocab, token))

    def text_of(self, tokens: list[int]) -> str:
        return b"".join(self.piece(token) for token in tokens).decode("utf-8", errors="replace")


def jinja_template(source: str, bos_text: str = "", eos_text: str = "", eos: int | None = None) -> Any:
    """A Hugging Face style Jinja chat template, rendered in llama-cpp-python's sandbox."""
    return llama_chat_format.Jinja2ChatFormatter(
        template=source, eos_token=eos_text, bos_token=bos_text, stop_token_ids=None if eos is None else [eos]
    )


class ChatTemplate:
    """Messages (and tools) -> prompt text and the template's own stop strings."""

    def __init__(
        self, formatter: Any, tool_formatter: Any = None, tools_template: str | None = None, tool_format: str | None = None,
        specials: SpecialTexts | None = None,
    ) -> None:
        """``tools_template``: the text of the template the tools are rendered with (its
        family decides the tool format); ``tool_formatter``: a template of its own for
        requests with tools (a GGUF's ``tool_use`` one); ``specials``: the model's control
        tokens' texts, defused in a client's strings (none: read as the template's)."""
        self.formatter = formatter
        self.tool_formatter = tool_formatter
        self.specials = specials
        self.tool_format: ToolFormat = (
            named(tool_format) if tool_format not in (None, "auto") else for_template(tools_template, self._renders_tools)
        )
        # The model's reasoning family (reasoning/), None for a model that does not reason.
        self.reasoning = reasoning.for_template(tools_template)

    @classmethod
    def of_text(cls, template: str, bos_text: str = "", eos_text: str = "", tool_format: str | None = None) -> "ChatTemplate":
        return cls(jinja_template(template, bos_text, eos_text), None, template, tool_format)

    @classmethod
    def of_model(
        cls, model: Any, chat_format: str | None, chat_template: str | None = None, tool_format: str | None = None,
        tokenizer: Tokenizer | None = None,
    ) -> "ChatTemplate":
        """The model's template: the config's inline one, a named format, or the GGUF's own
        (with its tool-use template, if it has one beside the default: Hermes 2 Pro); the
        tokenizer then keeps a client's text text and shows the tool format's special tokens."""
        specials = tokenizer.specials if tokenizer is not None else None
        metadata = model.metadata()
        vocab = model.vocab
        eos, bos = llama_cpp.llama_vocab_eos(vocab), llama_cpp.llama_vocab_bos(vocab)
        eos_text = model.token_get_text(eos) if eos != -1 else ""
        bos_text = model.token_get_text(bos) if bos != -1 else ""
        tool_use = None
        if chat_template or (chat_format and "{%" in chat_format):
            template = chat_template or chat_format  # an inline Jinja template
        elif chat_format:
            formatters = _named_formatters()
            if chat_format not in formatters:
                raise ValueError(f"unknown chat_format {chat_format!r}; known: {sorted(formatters)}")
            return cls(formatters[chat_format], tool_format=tool_format, specials=specials)
        else:
            template = metadata.get("tokenizer.chat_template")
            tool_use = metadata.get("tokenizer.chat_template.tool_use")
        if template is None:
            formatter = _named_formatters()["llama-2"]  # llama-cpp-python's own fallback
        else:
            formatter = jinja_template(template, bos_text, eos_text, eos)
        tool_formatter = jinja_template(tool_use, bos_text, eos_text, eos) if tool_use else None
        chosen = cls(formatter, tool_formatter, tool_use or template, tool_format, specials)
        if tokenizer is not None:
            tokenizer.show(chosen.tool_format.markers)
            if chosen.reasoning is not None:
                tokenizer.show((chosen.reasoning.opening, chosen.reasoning.closing))
        return chosen

    def _renders_tools(self) -> bool:
        """Whether the template prints the tools it is given (a family's name in a template
        is not enough: some print no tools)."""
        try:
            text, _, _ = self._render([{"role": "user", "content": "x"}], [PROBE_TOOL], None)
        except Exception:
            return False
        return PROBE_TOOL["function"]["name"] in text

    def render(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None, tool_choice: Any = None,
        template_kwargs: dict[str, Any] | None = None,
    ) -> tuple[str, list[str], bool]:
        """The prompt, extra stop strings, and whether the prompt already has its BOS. The
        tools and the history's calls are written as the tool format says, the history's
        reasoning as the reasoning family's template reads it; ``template_kwargs``: the
        template's own switches (``enable_thinking``...); a template that refuses the
        messages (roles out of turn, say) is the client's 400. Where a string the client sent
        holds a control token's text, it is defused before the tool format and the template
        add their markup, and the prompt is ``Defused``: tokenized by ``SpecialTexts.tokens``."""
        defused = False
        if self.specials is not None and self.specials.found(messages, tools, tool_choice, template_kwargs):
            defused = True
            messages, tools, tool_choice, template_kwargs = (
                self.specials.defused(value) for value in (messages, tools, tool_choice, template_kwargs)
            )
        if self.reasoning is not None:
            messages = self.reasoning.history(messages)
        else:
            messages = [{key: value for key, value in message.items() if key != "reasoning_content"} for message in messages]
        messages, template_tools = self.tool_format.prompt(messages, tools, tool_choice)
        try:
            text, stop, has_bos = self._render(messages, template_tools, tool_choice, template_kwargs or {})
        except (jinja2.TemplateError, ValueError) as exc:
            raise RequestError(
                400, f"This model's chat template refused the messages: {exc}"[:500], "messages", "invalid_value"
            ) from None
        return (Defused(text) if defused else text), stop, has_bos

    def _render(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None, tool_choice: Any, template_kwargs: dict[str, Any] | None = None,
    ) -> tuple[str, list[str], bool]:
        formatter = self.tool_formatter if tools and self.tool_formatter else self.formatter
        extra = {"tools": tools, "tool_choice": tool_choice} if tools else {}
        result = formatter(messages=messages, **extra, **(template_kwargs or {}))
        stop = result.stop if isinstance(result.stop, list) else ([result.stop] if result.stop else [])
        return result.prompt, stop, result.added_special
