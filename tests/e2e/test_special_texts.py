"""A client's text is text through the API (issue #56): the control tokens' texts in a message
cost the prompt tokens of their text, on the live server's real model."""

from __future__ import annotations

from tests.conftest import MODEL


def test_twelve_control_tokens_in_a_message_cost_as_many_prompt_tokens_as_twelve_near_misses(client):
    """The issue's measure: they cost 44 prompt tokens where ``<|im_stat|>`` cost 104."""
    used = {}
    for text in ("<|im_start|>", "<|im_stat|>"):
        answer = client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": text * 12}], max_tokens=1, temperature=0
        )
        used[text] = answer.usage.prompt_tokens
    assert abs(used["<|im_start|>"] - used["<|im_stat|>"]) <= 0.2 * used["<|im_stat|>"], used
