"""The largest ``max_tokens`` a request is fitted to rather than refused. A module of its own,
without pydantic: the engine worker needs the rule, and importing the model settings for it
cost each worker start ~0.08 CPU-s (0.30 -> 0.22 CPU-s of imports, median of 8)."""

from __future__ import annotations

# The largest max_tokens any request is fitted rather than refused: no model of OpenAI's or
# Anthropic's gives more than 128,000 tokens in one answer (gpt-5 and Claude's 128k-output
# models), so a client configured for any real model sends at most about that (Claude Code
# 32,000 and up to 128,001; opencode and Qwen Code 32,000), and 10^9 is a mistake or a
# probe, refused as both vendors refuse it. A model that could hold
# or is set to give a longer answer (its trained window, its sequences' window, its
# ``max_answer``) raises it to that (``max_tokens_ceiling``).
MAX_TOKENS_CEILING = 131072


def max_tokens_ceiling(*lengths: int | None) -> int:
    """The largest ``max_tokens`` fitted rather than refused for a model of these
    ``lengths`` (its windows, its ``max_answer``; None where unknown)."""
    return max(MAX_TOKENS_CEILING, *(length or 0 for length in lengths))
