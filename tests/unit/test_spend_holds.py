"""What a request holds against a hard spend limit (serving/metering/holds.py), read from its body."""

from __future__ import annotations

from llm_backend.serving.metering.holds import most_usage, text_bytes


def image_chat(size: int) -> dict:
    url = "data:image/png;base64," + "A" * size
    content = [{"type": "image_url", "image_url": {"url": url}}, {"type": "text", "text": "What is it?"}]
    return {"model": "vision", "messages": [{"role": "user", "content": content}], "max_tokens": 16}


def test_an_images_base64_holds_no_more_input_than_the_models_room():
    """A 5 MB data URL is not five million tokens: no prompt past the model's window is
    served (issue #60: it tripped a hard limit with insufficient_quota)."""
    body = image_chat(5_000_000)
    held = most_usage("completions", body, room=8192)
    assert held is not None and (held.input_tokens, held.output_tokens) == (8192, 16)


def test_without_a_room_the_input_is_held_by_its_bytes():
    body = image_chat(1000)
    held = most_usage("completions", body, room=None)
    assert held is not None and held.input_tokens == text_bytes(body) > 1000
