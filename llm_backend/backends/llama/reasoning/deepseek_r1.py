"""DeepSeek-R1 and its distills (Qwen, Llama): ``<think>…</think>`` then the answer. The
distills' template opens the block in the generation prompt (``<｜Assistant｜><think>\\n``),
so the answer starts inside it and only closes it; the original R1 template leaves the
opening to the model. Either way the template cannot switch thinking off (no flag): every
effort thinks. Reasoning in the history is dropped by the template itself (it keeps what
follows ``</think>``), so it is not passed back."""

from __future__ import annotations

from .base import Json, ReasoningFormat


class DeepSeekR1(ReasoningFormat):
    name = "deepseek-r1"

    @classmethod
    def detect(cls, template: str) -> bool:
        return "<｜Assistant｜>" in template and "</think>" in template

    def history(self, messages: list[Json]) -> list[Json]:
        return [{key: value for key, value in message.items() if key != "reasoning_content"} for message in messages]
