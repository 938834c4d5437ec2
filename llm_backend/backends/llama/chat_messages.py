"""Chat messages as the engine takes them (params.py builds the rest of a chat's parameters):
roles in the chat template's names, content as text, or as its parts in order where it holds
images (a vision model's, in the worker's form: images.py); every other content part (a
text-only model's images among them) a 400 naming it: ignoring it would change the answer.
"""

from __future__ import annotations

from typing import Any

from ...budgets import MAX_CHARS_PER_TOKEN
from ...errors import context_length_exceeded
from ...errors import not_supported_locally as unsupported
from ...json.types import Json


def _text_of(content: Any, param: str) -> str | list[Json] | None:
    """Message content as the chat template wants it: a string (text parts joined), or, where
    it holds images (a vision model's, in the worker's form: images.py), its parts in order,
    each text part as text; any other part a 400 naming it (a text-only model's images too)."""
    if content is None or isinstance(content, str):
        return content
    texts = []
    for index, part in enumerate(content):
        if part.get("type") == "image":
            texts.append(part)
        elif part.get("type") not in ("text", "refusal"):
            raise unsupported(f"{param}[{index}].type", f"'{part.get('type')}' content needs a multimodal model")
        else:
            texts.append(part.get("text") or part.get("refusal") or "")
    if any(isinstance(text, dict) for text in texts):
        return [{"type": "text", "text": text} if isinstance(text, str) else text for text in texts]
    return "".join(texts)


def _chars(content: Any) -> int:
    """A message content's characters of text: an image counts by its own bounds (images.py:
    bytes, pixels, images a request), not by its base64."""
    if isinstance(content, list):
        return sum(len(part.get("text") or part.get("refusal") or "") for part in content if isinstance(part, dict))
    return len(str(content or ""))


def check_size(messages: list[Json], n_ctx: int) -> None:
    """A request that cannot fit the context, refused without rendering it: every message
    takes at least one token of the template."""
    chars = sum(_chars(message.get("content")) for message in messages)
    if len(messages) > n_ctx or chars > n_ctx * MAX_CHARS_PER_TOKEN:
        needed = max(len(messages), chars // MAX_CHARS_PER_TOKEN)
        raise context_length_exceeded(needed, n_ctx, "messages")


def chat_messages(messages: list[Json]) -> list[Json]:
    converted = []
    for index, message in enumerate(messages):
        role = message["role"]
        if role == "function" or message.get("function_call"):
            raise unsupported(f"messages[{index}]", "the deprecated function messages; use tools")
        for call_index, call in enumerate(message.get("tool_calls") or []):
            if call.get("type") != "function":
                raise unsupported(f"messages[{index}].tool_calls[{call_index}].type", "only function tool calls")
        text = {
            # "developer" is OpenAI's newer name for the system role.
            "role": "system" if role == "developer" else role,
            "content": _text_of(message.get("content"), f"messages[{index}].content") or "",
        }
        # reasoning_content: an answer's reasoning passed back (the Responses API's reasoning
        # items), for the templates that read it (reasoning/).
        for key in ("tool_calls", "tool_call_id", "reasoning_content"):
            if message.get(key):
                text[key] = message[key]
        converted.append(text)
    # Calls and tool results are written for the model in its own format (tool_formats/).
    return converted
