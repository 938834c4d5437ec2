"""Qwen3 (and QwQ, the Qwen3 thinking models): ChatML with ``<think>…</think>``. Its
template's own switch is ``enable_thinking``: false writes an empty block in the
generation prompt (``<think>\\n\\n</think>\\n\\n``) and the model answers at once; the
thinking-only templates (2507) open the block in the prompt instead. A user's ``/no_think``
(Qwen3's soft switch) reaches the model as text: it answers with an empty block, read as
no reasoning. The template reads an assistant message's ``reasoning_content`` (and prints
it for the turns after the last user message), so reasoning passed back keeps that name."""

from __future__ import annotations

from ....json.types import Json
from .base import EFFORTS_OFF, ReasoningFormat


class Qwen3(ReasoningFormat):
    name = "qwen3"

    @classmethod
    def detect(cls, template: str) -> bool:
        return "<|im_start|>" in template and "<think>" in template

    def template_kwargs(self, effort: str | None) -> Json:
        if effort is None:
            return {}
        return {"enable_thinking": effort not in EFFORTS_OFF}

    def thinks(self, effort: str | None) -> bool:
        return effort not in EFFORTS_OFF
