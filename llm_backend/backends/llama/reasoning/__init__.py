"""Each reasoning model family's own reasoning, one module per family beside the tool
formats (base.ReasoningFormat): recognised from the GGUF's chat template, its switch
(``enable_thinking``, ``reasoning_effort``) set from the request's effort, its answers split
into ``reasoning_content`` and content. A template of no known family has no reasoning:
such a model refuses an effort other than ``none``, as OpenAI's non-reasoning models do.

The engine worker picks the family (engine/prompts.py), names it in its hello, renders the
template with its switch and says where each answer starts (inside a block the prompt
opened, or not); the API process splits answers with the family of that name (shapers.py).
"""

from __future__ import annotations

from ....errors import bad_request
from .base import BUDGETS, EFFORTS_OFF, ReasoningFormat, ThinkSplit
from .deepseek_r1 import DeepSeekR1
from .gpt_oss import GptOss
from .qwen3 import Qwen3

# In the order they are recognised (gpt-oss's template has no <think>; DeepSeek's ChatML-free).
FAMILIES: tuple[type[ReasoningFormat], ...] = (GptOss, DeepSeekR1, Qwen3)
FORMATS: dict[str, type[ReasoningFormat]] = {family.name: family for family in FAMILIES}


def named(name: str | None) -> ReasoningFormat | None:
    family = FORMATS.get(name or "")
    return family() if family is not None else None


def for_template(template: str | None) -> ReasoningFormat | None:
    family = next((family for family in FAMILIES if template and family.detect(template)), None)
    return family() if family is not None else None


def budget(family: ReasoningFormat | None, effort: str | None) -> int | None:
    """The thinking tokens an answer at ``effort`` may take (None: unbounded)."""
    if family is None or effort is None or not family.thinks(effort):
        return None
    return BUDGETS.get(effort)


def request_params(family_name: str | None, effort: str | None, param: str = "reasoning_effort") -> dict:
    """The engine parameters of ``effort`` for a model of reasoning family ``family_name``:
    the template's switch and the thinking budget. A model without reasoning refuses an
    effort other than ``none``, as OpenAI's non-reasoning models do."""
    family = named(family_name)
    if family is None:
        if effort not in (None, "none"):
            # OpenAI's words for its models that do not reason.
            raise bad_request(f"Unsupported parameter: '{param}' is not supported with this model.", param, "unsupported_parameter")
        return {}
    return {
        "reasoning_format": family.name,
        "chat_template_kwargs": family.template_kwargs(effort),
        "thinking_budget": budget(family, effort),
    }


__all__ = ["BUDGETS", "EFFORTS_OFF", "FORMATS", "ReasoningFormat", "ThinkSplit", "budget", "for_template", "named", "request_params"]
