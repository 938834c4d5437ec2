"""OpenAI's moderation categories, what each implies, and the model ids served.

A text labelled with a narrow category belongs to the broader ones it implies (a threat of
harassment is harassment, and violence): the classifier learns each category from every
example that implies it, and a flagged narrow category flags its broader ones.
"""

from __future__ import annotations

CATEGORIES = (
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/intent",
    "self-harm/instructions",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
)

IMPLIES = {
    "harassment/threatening": ("harassment", "violence"),
    "hate/threatening": ("hate", "violence"),
    "illicit/violent": ("illicit", "violence"),
    "self-harm/intent": ("self-harm",),
    "self-harm/instructions": ("self-harm",),
    "sexual/minors": ("sexual",),
    "violence/graphic": ("violence",),
}

# What omni-moderation applies to images as well as text (OpenAI's moderation guide).
IMAGE_CATEGORIES = frozenset(
    {"self-harm", "self-harm/intent", "self-harm/instructions", "sexual", "violence", "violence/graphic"}
)

DEFAULT_MODEL = "omni-moderation-latest"
MODEL_IDS = ("omni-moderation-latest", "omni-moderation-2024-09-26", "text-moderation-latest", "text-moderation-stable", "text-moderation-007")


def closure(labels: list[str] | tuple[str, ...]) -> set[str]:
    """``labels`` and every category they imply."""
    found = set(labels)
    for label in labels:
        found.update(IMPLIES.get(label, ()))
    return found
