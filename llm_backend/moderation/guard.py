"""A guard model judging moderations instead of the classifier: a local chat model (a
Llama Guard 3 or 4 GGUF, configured under ``models`` and named by ``moderation_guard``)
whose verdict is read and its hazard codes mapped to OpenAI's categories.

Llama Guard's chat template holds its whole task (the categories and the instructions), so
the text goes in as the user's message; the answer is ``safe``, or ``unsafe`` and a line of
codes (``S1,S10``). The answer is held to that form by a grammar (a guard writes nothing
else; any model then answers in a form that can be read), greedily; the score of the
flagged categories is the probability of the verdict's first token, so a hesitant verdict
scores lower. Categories Llama Guard does not tell apart (threats within harassment or
hate, intent or instructions within self-harm, graphic violence) are not flagged by it.
"""

from __future__ import annotations

import math
from typing import Any

from ..backends.capabilities import ChatBackend
from ..errors import guard_gave_no_verdict
from ..json.types import Json
from .categories import CATEGORIES, closure

# Llama Guard 3 and 4's hazard taxonomy (MLCommons), as OpenAI's categories.
HAZARDS = {
    "S1": ("illicit/violent",),  # violent crimes
    "S2": ("illicit",),  # non-violent crimes
    "S3": ("sexual", "illicit"),  # sex-related crimes
    "S4": ("sexual/minors",),  # child sexual exploitation
    "S5": ("harassment",),  # defamation
    "S6": (),  # specialized advice: no OpenAI category
    "S7": (),  # privacy
    "S8": (),  # intellectual property
    "S9": ("illicit/violent",),  # indiscriminate weapons
    "S10": ("hate",),  # hate
    "S11": ("self-harm",),  # suicide and self-harm
    "S12": ("sexual",),  # sexual content
    "S13": (),  # elections
    "S14": ("illicit",),  # code interpreter abuse
}
VERDICT = r'''root ::= "safe" | "unsafe\n" code ("," code)*
code ::= "S" [1-9] | "S1" [0-4]'''
MAX_TOKENS = 48


def categories_of(verdict: str) -> set[str] | None:
    """The OpenAI categories a verdict names (empty for ``safe``); None when it is not one."""
    lines = verdict.strip().splitlines()
    if lines == ["safe"]:
        return set()
    if len(lines) != 2 or lines[0] != "unsafe":
        return None
    codes = [code.strip() for code in lines[1].split(",")]
    if not all(code in HAZARDS for code in codes):
        return None
    return closure([category for code in codes for category in HAZARDS[code]])


class Guard:
    """The guard model of ``moderation_guard``, asked through its backend (local)."""

    def __init__(self, backend: ChatBackend, model_id: str) -> None:
        self.backend = backend
        self.model_id = model_id

    async def judge(self, text: str) -> tuple[dict[str, float], set[str]]:
        """Each category's score for ``text`` (the verdict's probability where flagged),
        and the categories flagged."""
        request: Json = {
            "model": self.model_id,
            "messages": [{"role": "user", "content": text}],
            "temperature": 0,
            "max_tokens": MAX_TOKENS,
            "grammar": VERDICT,
            "logprobs": True,
        }
        answer: Any = await self.backend.chat_completion_objects(self.model_id, request)
        choice = answer["choices"][0]
        verdict = choice["message"]["content"] or ""
        flagged = categories_of(verdict)
        if flagged is None:
            raise guard_gave_no_verdict(self.model_id)
        first = (choice.get("logprobs") or {}).get("content") or [{"logprob": 0.0}]
        confidence = math.exp(first[0]["logprob"])
        if not flagged:
            return {category: 1 - confidence for category in CATEGORIES}, flagged
        return {category: confidence if category in flagged else 0.0 for category in CATEGORIES}, flagged
