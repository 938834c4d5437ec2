"""gpt-oss (harmony): reasoning is the ``analysis`` channel, which its tool format reads
(tool_formats/gpt_oss.py gives it as reasoning). The template's switch is
``reasoning_effort`` (``Reasoning: low|medium|high`` in its system message, medium by
default); it has no "off", so ``none`` and ``minimal`` ask for ``low``. Reasoning passed
back is the template's ``thinking`` field (it prints it before a call's message)."""

from __future__ import annotations

from ....json.types import Json
from .base import ReasoningFormat

# The template's three levels; OpenAI's five efforts onto them.
LEVELS = {"none": "low", "minimal": "low", "low": "low", "medium": "medium", "high": "high", "xhigh": "high"}


class GptOss(ReasoningFormat):
    name = "gpt-oss"
    budget_opening = "<|channel|>analysis<|message|>"
    budget_closing = "<|end|>"
    budget_close = "<|end|><|start|>assistant<|channel|>final<|message|>"

    @classmethod
    def detect(cls, template: str) -> bool:
        return "<|channel|>" in template

    def template_kwargs(self, effort: str | None) -> Json:
        return {} if effort is None else {"reasoning_effort": LEVELS[effort]}

    def history(self, messages: list[Json]) -> list[Json]:
        renamed = []
        for message in messages:
            if "reasoning_content" in message:
                message = dict(message)
                thinking = message.pop("reasoning_content")
                if thinking:
                    message["thinking"] = thinking
            renamed.append(message)
        return renamed

    def start(self, prompt: str) -> str:
        return "channels"

    def splitter(self, start: str) -> None:
        return None  # its tool format reads the channels
