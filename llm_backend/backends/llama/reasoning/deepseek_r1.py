"""DeepSeek-R1 and its distills (Qwen, Llama), and the hybrid V3.1: ``<think>…</think>``
then the answer. The distills' template opens the block in the generation prompt
(``<｜Assistant｜><think>\\n``), so the answer starts inside it and only closes it; the
original R1 template leaves the opening to the model. Neither can switch thinking off (no
flag): every effort thinks, and the budget closes the block at once for ``none``. V3.1's
template has the flag, ``thinking`` (off by default: ``</think>`` in the prompt), set here
from the effort. Reasoning in the history is dropped by the templates themselves (they keep
what follows ``</think>``), so it is not passed back."""

from __future__ import annotations

from ....json.types import Json
from .base import EFFORTS_OFF, ReasoningFormat


class DeepSeekR1(ReasoningFormat):
    name = "deepseek-r1"

    @classmethod
    def detect(cls, template: str) -> bool:
        return "<｜Assistant｜>" in template and "</think>" in template

    def template_kwargs(self, effort: str | None) -> Json:
        # V3.1's switch; R1's templates have none and ignore it.
        return {} if effort is None else {"thinking": effort not in EFFORTS_OFF}

    def history(self, messages: list[Json]) -> list[Json]:
        return [{key: value for key, value in message.items() if key != "reasoning_content"} for message in messages]
